//! The services behind the sync endpoints.

pub(crate) mod batch;
pub(crate) mod bootstrap;
pub(crate) mod chunks;
pub(crate) mod deltas;
pub(crate) mod group_commit;
pub(crate) mod mutate;
pub(crate) mod ndjson;
mod normalize;
pub(crate) mod rate_limit;
mod registry;
pub(crate) mod snapshot;
pub(crate) mod streams;
pub(crate) mod supervise;

pub use chunks::ChunkStream;
pub use ndjson::NdjsonStream;
pub(crate) use registry::DynModel;
pub use registry::{Registry, RegistryBuilder};
pub use streams::StreamLimits;
