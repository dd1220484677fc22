//! Wire types of the sync protocol (docs/protocol.md). Field order in each struct
//! is the key order on the wire.

mod action;
mod bootstrap;
pub(crate) mod group_change;
mod mutate;
mod params;
mod sync_id;

pub use action::{ActionKind, DeltaPacket, DeltasResponse, SyncAction};
pub use bootstrap::{BootstrapMetadata, ErrorLine};
pub use group_change::GROUP_CHANGE_MODEL;
pub use mutate::{MutateRequest, MutateResponse, MutationAction, TransactionInput, TxResult};
pub use params::{BatchItem, BatchParams, BootstrapKind, BootstrapParams, DeltasParams};
pub use sync_id::{ParseSyncIdError, SyncId};
