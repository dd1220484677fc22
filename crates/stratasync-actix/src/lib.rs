//! actix-web adapter for StrataSync.
//!
//! This crate maps the HTTP and WebSocket endpoints of the sync protocol onto
//! [`stratasync_core`]. It is being built in a later milestone; see the
//! README's status section.

pub use stratasync_core as core;
