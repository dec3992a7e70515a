//! The route configuration compiled once per config generation (see the HTTP brief).
