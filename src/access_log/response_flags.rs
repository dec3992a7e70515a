//! Envoy's response flags (`%RESPONSE_FLAGS%` / `%RESPONSE_FLAGS_LONG%`).
//!
//! Envoy 1.40 knows 30 core flags (the list its `response_flag_filter` validation prints:
//! `LH UH UT LR UR UF UC UO NR DI FI RL UAEX RLSE DC URX SI IH DPE UMSDR RFCF NFCF DT UPE NC OM
//! DF DO DR UDO`). Since Envoy 1.30 a stream keeps its flags in a vector in the order they were
//! *set*, and `%RESPONSE_FLAGS%` joins them in that order: a TCP connect failure logs `UF,URX`
//! (connect failure, then attempts exhausted), an HTTP retry that runs out logs `URX,UF`, and a
//! fault-delayed request to an empty cluster logs `DI,UH` (all three captured from Envoy 1.40).
//! [`ResponseFlags`] therefore remembers insertion order instead of being a bitset; it stays
//! `Copy` and `Default`. Equality compares members *and* order (two values are equal exactly
//! when they print the same).

use std::fmt;

/// Number of core flags in Envoy 1.40.
const FLAG_COUNT: usize = 30;

/// Short and long (PascalCase) names, indexed by Envoy's `CoreResponseFlag` value.
const NAMES: [(&str, &str); FLAG_COUNT] = [
    ("LH", "FailedLocalHealthCheck"),
    ("UH", "NoHealthyUpstream"),
    ("UT", "UpstreamRequestTimeout"),
    ("LR", "LocalReset"),
    ("UR", "UpstreamRemoteReset"),
    ("UF", "UpstreamConnectionFailure"),
    ("UC", "UpstreamConnectionTermination"),
    ("UO", "UpstreamOverflow"),
    ("NR", "NoRouteFound"),
    ("DI", "DelayInjected"),
    ("FI", "FaultInjected"),
    ("RL", "RateLimited"),
    ("UAEX", "UnauthorizedExternalService"),
    ("RLSE", "RateLimitServiceError"),
    ("DC", "DownstreamConnectionTermination"),
    ("URX", "UpstreamRetryLimitExceeded"),
    ("SI", "StreamIdleTimeout"),
    ("IH", "InvalidEnvoyRequestHeaders"),
    ("DPE", "DownstreamProtocolError"),
    ("UMSDR", "UpstreamMaxStreamDurationReached"),
    ("RFCF", "ResponseFromCacheFilter"),
    ("NFCF", "NoFilterConfigFound"),
    ("DT", "DurationTimeout"),
    ("UPE", "UpstreamProtocolError"),
    ("NC", "NoClusterFound"),
    ("OM", "OverloadManagerTerminated"),
    ("DF", "DnsResolutionFailed"),
    ("DO", "DropOverload"),
    ("DR", "DownstreamRemoteReset"),
    ("UDO", "UnconditionalDropOverload"),
];

/// A set of response flags that remembers the order in which they were set.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct ResponseFlags {
    /// Flag indexes (into `NAMES`) in insertion order; slots at and past `len` stay 0.
    order: [u8; FLAG_COUNT],
    len: u8,
}

impl ResponseFlags {
    /// `LH`: local health check failed.
    pub const LH: ResponseFlags = ResponseFlags::single(0);
    /// `UH`: no healthy upstream host.
    pub const UH: ResponseFlags = ResponseFlags::single(1);
    /// `UT`: upstream request timeout.
    pub const UT: ResponseFlags = ResponseFlags::single(2);
    /// `LR`: local reset.
    pub const LR: ResponseFlags = ResponseFlags::single(3);
    /// `UR`: upstream remote reset.
    pub const UR: ResponseFlags = ResponseFlags::single(4);
    /// `UF`: upstream connection failure.
    pub const UF: ResponseFlags = ResponseFlags::single(5);
    /// `UC`: upstream connection termination.
    pub const UC: ResponseFlags = ResponseFlags::single(6);
    /// `UO`: upstream overflow (circuit breaking).
    pub const UO: ResponseFlags = ResponseFlags::single(7);
    /// `NR`: no route (HTTP) or no matching filter chain.
    pub const NR: ResponseFlags = ResponseFlags::single(8);
    /// `DI`: fault-injected delay.
    pub const DI: ResponseFlags = ResponseFlags::single(9);
    /// `FI`: fault-injected abort.
    pub const FI: ResponseFlags = ResponseFlags::single(10);
    /// `RL`: locally rate limited.
    pub const RL: ResponseFlags = ResponseFlags::single(11);
    /// `UAEX`: denied by the external authorization service.
    pub const UAEX: ResponseFlags = ResponseFlags::single(12);
    /// `RLSE`: rate-limit service error.
    pub const RLSE: ResponseFlags = ResponseFlags::single(13);
    /// `DC`: downstream connection termination.
    pub const DC: ResponseFlags = ResponseFlags::single(14);
    /// `URX`: retry limit (HTTP) or max connect attempts (TCP) reached.
    pub const URX: ResponseFlags = ResponseFlags::single(15);
    /// `SI`: stream idle timeout.
    pub const SI: ResponseFlags = ResponseFlags::single(16);
    /// `IH`: invalid strictly-checked `x-envoy-*` request header.
    pub const IH: ResponseFlags = ResponseFlags::single(17);
    /// `DPE`: downstream protocol error.
    pub const DPE: ResponseFlags = ResponseFlags::single(18);
    /// `UMSDR`: upstream max stream duration reached.
    pub const UMSDR: ResponseFlags = ResponseFlags::single(19);
    /// `RFCF`: response served from the cache filter.
    pub const RFCF: ResponseFlags = ResponseFlags::single(20);
    /// `NFCF`: no filter config found (ECDS warming).
    pub const NFCF: ResponseFlags = ResponseFlags::single(21);
    /// `DT`: max connection / stream duration reached.
    pub const DT: ResponseFlags = ResponseFlags::single(22);
    /// `UPE`: upstream protocol error.
    pub const UPE: ResponseFlags = ResponseFlags::single(23);
    /// `NC`: upstream cluster not found.
    pub const NC: ResponseFlags = ResponseFlags::single(24);
    /// `OM`: terminated by the overload manager.
    pub const OM: ResponseFlags = ResponseFlags::single(25);
    /// `DF`: DNS resolution failed.
    pub const DF: ResponseFlags = ResponseFlags::single(26);
    /// `DO`: dropped by `drop_overload`.
    pub const DO: ResponseFlags = ResponseFlags::single(27);
    /// `DR`: downstream remote reset.
    pub const DR: ResponseFlags = ResponseFlags::single(28);
    /// `UDO`: dropped unconditionally (`drop_overload` at 100%).
    pub const UDO: ResponseFlags = ResponseFlags::single(29);

    const fn single(index: u8) -> ResponseFlags {
        let mut order = [0u8; FLAG_COUNT];
        order[0] = index;
        ResponseFlags { order, len: 1 }
    }

    /// Adds every flag of `f` that is not set yet, after the ones already set.
    pub fn set(&mut self, f: ResponseFlags) {
        for index in f.indexes() {
            if !self.indexes().any(|i| i == index) && usize::from(self.len) < FLAG_COUNT {
                self.order[usize::from(self.len)] = index;
                self.len += 1;
            }
        }
    }

    /// True when every flag of `f` is set in `self`.
    pub fn contains(&self, f: ResponseFlags) -> bool {
        f.indexes().all(|index| self.indexes().any(|i| i == index))
    }

    /// True when no flag is set.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Envoy's short names (`UF`, `URX`, ...) in the order the flags were set.
    pub fn short_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.indexes().map(|i| NAMES[usize::from(i)].0)
    }

    /// Envoy's long names (`UpstreamConnectionFailure`, ...) in the order the flags were set.
    pub fn long_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.indexes().map(|i| NAMES[usize::from(i)].1)
    }

    /// `%RESPONSE_FLAGS_LONG%`: long names joined by `,`, or `-` when empty.
    pub fn to_long_string(&self) -> String {
        join_or_dash(self.long_names())
    }

    /// The flag named by an Envoy short name (as used by `response_flag_filter`).
    pub fn from_short_name(name: &str) -> Option<ResponseFlags> {
        NAMES.iter().position(|(short, _)| *short == name).and_then(|i| u8::try_from(i).ok()).map(ResponseFlags::single)
    }

    fn indexes(&self) -> impl Iterator<Item = u8> + '_ {
        self.order[..usize::from(self.len)].iter().copied()
    }
}

fn join_or_dash<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let joined = names.collect::<Vec<_>>().join(",");
    if joined.is_empty() {
        "-".to_string()
    } else {
        joined
    }
}

impl fmt::Display for ResponseFlags {
    /// `%RESPONSE_FLAGS%`: short names joined by `,` in insertion order, `-` when empty.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&join_or_dash(self.short_names()))
    }
}

impl fmt::Debug for ResponseFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResponseFlags({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_flags_print_dash() {
        assert_eq!(ResponseFlags::default().to_string(), "-");
        assert_eq!(ResponseFlags::default().to_long_string(), "-");
        assert!(ResponseFlags::default().is_empty());
    }

    #[test]
    fn flags_print_in_the_order_they_were_set_like_envoy_1_40() {
        // Captured from Envoy 1.40: TCP connect failure, HTTP retry exhausted, fault delay + UH.
        let mut tcp = ResponseFlags::default();
        tcp.set(ResponseFlags::UF);
        tcp.set(ResponseFlags::URX);
        assert_eq!(tcp.to_string(), "UF,URX");
        assert_eq!(tcp.to_long_string(), "UpstreamConnectionFailure,UpstreamRetryLimitExceeded");

        let mut http = ResponseFlags::default();
        http.set(ResponseFlags::URX);
        http.set(ResponseFlags::UF);
        assert_eq!(http.to_string(), "URX,UF");

        let mut fault = ResponseFlags::default();
        fault.set(ResponseFlags::DI);
        fault.set(ResponseFlags::UH);
        assert_eq!(fault.to_string(), "DI,UH");
        assert_eq!(fault.to_long_string(), "DelayInjected,NoHealthyUpstream");
    }

    #[test]
    fn setting_a_flag_twice_keeps_its_first_position() {
        let mut f = ResponseFlags::default();
        f.set(ResponseFlags::UF);
        f.set(ResponseFlags::URX);
        f.set(ResponseFlags::UF);
        assert_eq!(f.to_string(), "UF,URX");
        assert!(f.contains(ResponseFlags::UF));
        assert!(!f.contains(ResponseFlags::NR));
        let mut both = ResponseFlags::UF;
        both.set(ResponseFlags::URX);
        assert!(f.contains(both));
    }

    #[test]
    fn every_flag_has_envoy_1_40_names() {
        let all =
            "LH UH UT LR UR UF UC UO NR DI FI RL UAEX RLSE DC URX SI IH DPE UMSDR RFCF NFCF DT UPE NC OM DF DO DR UDO";
        let mut f = ResponseFlags::default();
        for name in all.split(' ') {
            let flag = ResponseFlags::from_short_name(name);
            assert!(flag.is_some(), "{name}");
            f.set(flag.unwrap_or_default());
        }
        assert_eq!(f.to_string(), all.replace(' ', ","));
        assert_eq!(ResponseFlags::from_short_name("XX"), None);
        assert_eq!(ResponseFlags::OM.to_long_string(), "OverloadManagerTerminated");
        assert_eq!(ResponseFlags::DF.to_long_string(), "DnsResolutionFailed");
    }

    #[test]
    fn equality_follows_printing() {
        let mut a = ResponseFlags::UF;
        a.set(ResponseFlags::URX);
        let mut b = ResponseFlags::URX;
        b.set(ResponseFlags::UF);
        assert_ne!(a, b);
        assert_eq!(a, a);
        assert_eq!(format!("{a:?}"), "ResponseFlags(UF,URX)");
    }
}
