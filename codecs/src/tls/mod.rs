//! TLS facts a listener needs before choosing a filter chain (for `tls_inspector`).

pub mod client_hello;
