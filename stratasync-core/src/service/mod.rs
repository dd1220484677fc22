//! The services behind the sync endpoints.

pub mod batch;
pub mod bootstrap;
pub(crate) mod chunks;
pub mod deltas;
pub mod group_commit;
pub mod mutate;
pub(crate) mod ndjson;
pub mod rate_limit;
pub(crate) mod snapshot;
pub mod streams;
pub(crate) mod supervise;

pub use chunks::ChunkStream;
pub use ndjson::NdjsonStream;
pub use streams::StreamLimits;
