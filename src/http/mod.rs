//! The HTTP/1.1 half of the server: parsing the request head, writing
//! responses, and the plain routes (`/`, static files, `/healthz`).
//!
//! A WebSocket connection starts as one HTTP request (RFC 6455 §4.1); this
//! module reads it, and [`crate::protocol::handshake`] decides whether it
//! is a valid upgrade.

pub mod cookie;
pub mod health;
pub mod origin;
pub mod request;
pub mod response;
pub mod static_files;

pub use request::{ParseError, Request};
pub use response::Response;
