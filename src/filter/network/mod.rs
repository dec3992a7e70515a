//! Network (L4) filters.

pub mod postgres_proxy;
pub mod pump;
pub mod tcp_proxy;
pub mod udp_proxy;
