//! Parsing and validation of raw HTTP inputs into the services' parameters,
//! independent of any web framework (docs/protocol.md §3.1 and §4).
//!
//! The endpoints ([`SyncEndpoints`](crate::SyncEndpoints)) hand these
//! (internal) functions what a transport received (the raw query string,
//! the `Authorization` header, the request body) and get back either the
//! typed parameters of [`SyncEngine`](crate::SyncEngine)'s services or a
//! failure that already carries the exact status, body and messages of the
//! protocol:
//!
//! | input | function | success | failure |
//! |---|---|---|---|
//! | `GET /sync/bootstrap` query | `bootstrap_query` | [`BootstrapParams`](crate::protocol::BootstrapParams) | `ValidationFailure` (400) |
//! | `GET /sync/deltas` query | `deltas_query` | [`DeltasParams`](crate::protocol::DeltasParams) | `ValidationFailure` (400) |
//! | `POST /sync/batch` body | `batch_body` | [`BatchParams`](crate::protocol::BatchParams) | `ValidationFailure` (400) |
//! | `POST /sync/mutate` body | `mutate_body` | [`MutateRequest`](crate::protocol::MutateRequest) | `ValidationFailure` (400) |
//! | request body bytes | `body_plan`, `decode_body` | a JSON value | `BodyError` (400, 413, 415) |
//! | `Authorization` header | `bearer_token` | the token | `BearerError` (401) |
//!
//! Only the limits (the `MAX_*` constants) are public.
//!
//! The order of checks is the protocol's: body parsing, then validation,
//! then authentication, then the handler. Nothing here panics on any input,
//! and every message is fixed text (never a fragment of SQL or an internal
//! error).
//!
//! # Validation semantics
//!
//! The reference validates with a schema library; this module reproduces
//! its observable rules rather than its code:
//!
//! * Each failure is reported under the **top-level** key it concerns
//!   (`transactions[3].clientId` reports `"transactions"`), or `"root"` when
//!   the body is not an object. Entries are grouped by field, fields in the
//!   order they first fail, messages in the order they were found.
//! * A wrong JSON type (or a query key given twice, which arrives as an
//!   array) is *aborting*: the value is not checked further, and the checks
//!   that apply to a whole object or array (the array length, the
//!   "`firstSyncId` is required for partial bootstrap" rule) are skipped.
//!   Content failures (an empty string, a non-numeric id) are not aborting.
//! * Sync ids and cursors are ASCII digits within `0..=2^63-1`
//!   ([`SyncId`](crate::SyncId)`::from_str`); anything else, Unicode digits
//!   and huge numbers included, is a 400 with the field's message.
//!
//! # `clientTxId` on mutate validation failures (docs/protocol.md §10 #19)
//!
//! The reference answers a schema failure on `/sync/mutate` with a 400 that
//! names no transaction, so its client requeues the whole batch forever. Here,
//! when **every** failure lies inside `transactions[i]` items, the failure
//! carries the `clientTxId` of the first failing transaction (if that is a
//! non-empty string), and the body becomes
//!
//! ```json
//! {"clientTxId":"4b2e…","details":[{"field":"transactions","message":"Client ID is required"}],
//!  "error":"Validation failed","requestId":"req-7","source":"body"}
//! ```
//!
//! The published client drops exactly that transaction on a 400 with a
//! string `clientTxId` and re-sends the rest (§9.6). If several
//! transactions are invalid, each round trip drops one of them, so the
//! queue always drains. Failures outside the items (`batchId`, the array
//! itself, its length) name no transaction.
//!
//! The `clientTxId` is named even when it is itself what is invalid (longer
//! than [`MAX_ID_CHARS`], or holding control characters), exactly as it
//! was sent: the client compares that string with its queued transactions,
//! so naming anything else (or nothing) would leave the bad transaction in
//! its outbox, re-sent forever. Only a `clientTxId` that is missing, empty
//! or not a string cannot be named.
//!
//! # Ids
//!
//! `batchId`, `clientId` and `clientTxId` hold at most [`MAX_ID_CHARS`]
//! (255) characters and no control character (`Batch ID must be at most
//! 255 characters`, `Client ID must not contain control characters`, …),
//! so every pair fits the log's unique index and can be stored at all (a
//! NUL cannot). The reference accepts any non-empty string; a published
//! client sends UUIDs.

mod batch;
mod bearer;
mod body;
mod bootstrap;
mod deltas;
mod failure;
mod issues;
mod mutate;
mod query;

pub(crate) use batch::batch_body;
pub use batch::MAX_BATCH_REQUESTS;
pub(crate) use bearer::{bearer_token, BearerError};
pub use body::MAX_BODY_BYTES;
pub(crate) use body::{body_plan, decode_body, BodyError, BodyPlan, FrameworkErrorBody};
pub(crate) use bootstrap::bootstrap_query;
pub use bootstrap::{MAX_ONLY_MODELS, MAX_SYNC_GROUPS};
pub(crate) use deltas::deltas_query;
pub(crate) use failure::ValidationFailure;
pub(crate) use mutate::mutate_body;
pub use mutate::{MAX_ID_CHARS, MAX_TRANSACTIONS};
pub use query::MAX_QUERY_PAIRS;
