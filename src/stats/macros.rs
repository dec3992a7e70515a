//! `define_stats!`: declares a component's stats once as a struct of handles with a constructor
//! that registers each one in a [`Store`](crate::stats::Store) as `prefix + field name`.
//!
//! ```
//! use legate::define_stats;
//! use legate::stats::Store;
//!
//! define_stats! {
//!     /// tcp_proxy stats (`tcp.<stat_prefix>.`)
//!     pub struct TcpProxyStats {
//!         counter downstream_cx_total,
//!         gauge downstream_cx_rx_bytes_buffered,
//!         histogram upstream_cx_connect_ms: Milliseconds,
//!     }
//! }
//!
//! let store = Store::new();
//! let stats = TcpProxyStats::new(&store, "tcp.ingress.");
//! stats.downstream_cx_total.inc();
//! assert_eq!(store.counter("tcp.ingress.downstream_cx_total").value(), 1);
//! ```

/// See the [module documentation](crate::stats::macros).
#[macro_export]
macro_rules! define_stats {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $( $(#[$fmeta:meta])* $kind:ident $field:ident $(: $unit:ident)? ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug)]
        $vis struct $name {
            $( $(#[$fmeta])* pub $field: $crate::define_stats!(@type $kind), )*
        }

        impl $name {
            /// Registers every stat as `prefix` + field name (`prefix` ends with a dot).
            pub fn new(store: &$crate::stats::Store, prefix: &str) -> Self {
                Self {
                    $( $field: $crate::define_stats!(
                        @make store, prefix, stringify!($field), $kind $(, $unit)?
                    ), )*
                }
            }

            /// Unregistered handles (tests, disabled components).
            pub fn detached() -> Self {
                Self {
                    $( $field: $crate::define_stats!(@detached $kind $(, $unit)?), )*
                }
            }
        }
    };

    (@type counter) => { $crate::stats::Counter };
    (@type gauge) => { $crate::stats::Gauge };
    (@type histogram) => { $crate::stats::Histogram };
    (@type text_readout) => { $crate::stats::TextReadout };

    (@make $store:ident, $prefix:ident, $field:expr, counter) => {
        $store.counter(&::std::format!("{}{}", $prefix, $field))
    };
    (@make $store:ident, $prefix:ident, $field:expr, gauge) => {
        $store.gauge(&::std::format!("{}{}", $prefix, $field))
    };
    (@make $store:ident, $prefix:ident, $field:expr, text_readout) => {
        $store.text_readout(&::std::format!("{}{}", $prefix, $field))
    };
    (@make $store:ident, $prefix:ident, $field:expr, histogram, $unit:ident) => {
        $store.histogram(
            &::std::format!("{}{}", $prefix, $field),
            $crate::stats::HistogramUnit::$unit,
        )
    };
    (@make $store:ident, $prefix:ident, $field:expr, histogram) => {
        $store.histogram(
            &::std::format!("{}{}", $prefix, $field),
            $crate::stats::HistogramUnit::Unspecified,
        )
    };

    (@detached counter) => { $crate::stats::Counter::detached() };
    (@detached gauge) => { $crate::stats::Gauge::detached() };
    (@detached text_readout) => { $crate::stats::TextReadout::detached() };
    (@detached histogram, $unit:ident) => {
        $crate::stats::Histogram::detached($crate::stats::HistogramUnit::$unit)
    };
    (@detached histogram) => {
        $crate::stats::Histogram::detached($crate::stats::HistogramUnit::Unspecified)
    };
}

#[cfg(test)]
mod tests {
    use crate::stats::{HistogramUnit, Store};

    crate::define_stats! {
        /// Example stats.
        pub struct ExampleStats {
            counter downstream_cx_total,
            /// Bytes buffered.
            gauge downstream_cx_rx_bytes_buffered,
            histogram upstream_cx_connect_ms: Milliseconds,
            histogram plain,
            text_readout version,
        }
    }

    #[test]
    fn registers_with_prefix() {
        let store = Store::new();
        let stats = ExampleStats::new(&store, "tcp.ingress.");
        stats.downstream_cx_total.inc();
        stats.downstream_cx_rx_bytes_buffered.set(9);
        stats.upstream_cx_connect_ms.record(3);
        stats.version.set("x");
        assert_eq!(store.counter("tcp.ingress.downstream_cx_total").value(), 1);
        assert_eq!(store.gauge("tcp.ingress.downstream_cx_rx_bytes_buffered").value(), 9);
        let h = store.histogram("tcp.ingress.upstream_cx_connect_ms", HistogramUnit::Unspecified);
        assert_eq!(h.unit(), HistogramUnit::Milliseconds);
        assert!(h.same_as(&stats.upstream_cx_connect_ms));
        assert_eq!(stats.plain.unit(), HistogramUnit::Unspecified);
        assert_eq!(store.text_readout("tcp.ingress.version").value(), "x");
        let again = ExampleStats::new(&store, "tcp.ingress.");
        assert!(again.downstream_cx_total.same_as(&stats.downstream_cx_total));
        let d = ExampleStats::detached();
        d.downstream_cx_total.inc();
        assert_eq!(store.snapshot().len(), 5);
    }
}
