//! The services behind the sync endpoints.

pub mod batch;
pub mod bootstrap;
pub mod deltas;
pub mod group_commit;
pub mod mutate;
pub(crate) mod ndjson;
pub mod rate_limit;
pub(crate) mod supervise;

pub use ndjson::NdjsonStream;
