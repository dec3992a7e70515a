//! Network (L4) filters.

pub mod mongo_proxy;
pub mod postgres_proxy;
pub mod pump;
pub mod redis_proxy;
pub mod sock;
pub mod tcp_proxy;
pub mod udp_proxy;
