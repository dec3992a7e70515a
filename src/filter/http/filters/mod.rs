//! HTTP filters other than the router (see the HTTP filters brief).
