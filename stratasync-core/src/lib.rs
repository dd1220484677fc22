//! # stratasync-core
//!
//! The engine of StrataSync, a Linear-style sync server: protocol types,
//! field codecs, the model contract implemented by `#[derive(SyncModel)]`,
//! storage on PostgreSQL (diesel-async), and the bootstrap, batch, delta and
//! mutate services. The whole sync protocol is here too, without I/O:
//! [`endpoint`] answers each HTTP endpoint from the parts of a request, and
//! [`realtime::SocketSession`] runs a WebSocket session over the events a
//! transport reads. Adapters (`stratasync-actix`, `stratasync-axum`)
//! depend on this crate and only move bytes between their web framework
//! and these.
//!
//! An application builds one [`SyncEngine`] with [`SyncEngine::builder`],
//! starts it ([`engine::SyncEngineBuilder::start`] checks every setting)
//! and stops it with [`SyncEngine::shutdown`].
//!
//! A request travels:
//!
//! | step | where |
//! |---|---|
//! | request | the adapter reads it into an [`endpoint::RequestParts`] |
//! | endpoint | [`SyncEndpoints`]: body limits, validation, auth, then an [`endpoint::Reply`] |
//! | engine | [`SyncEngine`]: admission, rate limits, the delta page reader |
//! | service | bootstrap and batch snapshots, group commit (internal; settings in [`engine`]) |
//! | storage | [`storage`]: the model's rows and its `sync_actions` in one transaction |
//! | log | `sync_actions`, ids in commit order |
//! | feed | [`realtime::Hub`]: tails the log, encodes each delta once (Redis across nodes) |
//! | session | [`realtime::SocketSession`]: every WebSocket message, answer and close code |
//! | adapter | writes the reply, or the session's frames through its [`realtime::FrameEncoder`] |
//!
//! The modules are layered, each using only those below it:
//!
//! | layer | modules |
//! |---|---|
//! | over the engine | [`endpoint`], [`ops::explain`] |
//! | the engine (every `impl SyncEngine`) | [`engine`] |
//! | live delivery | [`realtime`] |
//! | writes from server code, log maintenance | [`write`](mod@write), [`ops`] |
//! | services: the [`Registry`], bootstrap, batch, delta pages, group commit, limits | `service` (internal; its settings are re-exported by [`engine`]) |
//! | the model contract | [`model`] |
//! | read scope, group rules, metrics | [`scope`], [`metrics`] |
//! | errors | [`error`] |
//! | field codecs | [`codec`] |
//! | the caller | [`auth`] |
//! | PostgreSQL | [`storage`] (the log's reader and writer are internal) |
//! | validation, the delta bus | [`request`], `bus` (internal) |
//! | wire types | [`protocol`] |
//! | leaves | [`log_text`], [`request_id`], [`composite_id`], [`tls`], [`readiness`] |
//!
//! No edge goes up. The integration test `layering` checks the order on every build of the
//! tests.
//!
//! Features (both on by default):
//!
//! * `derive`: `#[derive(SyncModel)]`;
//! * `redis`: fan-out across nodes through Redis
//!   (`SyncEngineBuilder::redis_url`, `realtime::redis`).

// Internals are `pub(crate)`: a `pub` item must be reachable from the
// crate root (and is then documented as API).
#![warn(unreachable_pub)]

pub mod auth;
pub(crate) mod bus;
pub mod codec;
pub mod composite_id;
pub mod endpoint;
pub mod engine;
pub mod error;
pub mod log_text;
pub mod metrics;
pub mod model;
pub mod ops;
pub mod protocol;
pub mod readiness;
pub mod realtime;
pub mod request;
pub mod request_id;
pub mod scope;
pub(crate) mod service;
pub mod storage;
pub mod tls;
pub mod write;

pub use auth::{AuthContext, AuthRejection, AuthUser, SyncAuth};
pub use endpoint::SyncEndpoints;
pub use engine::SyncEngine;
pub use error::{MutationError, ServiceError};
pub use model::{HookContext, HookError, ModelHooks, NoHooks, SyncChanges, SyncModel};
pub use protocol::SyncId;
pub use scope::ScopeFilter;
pub use service::{Registry, RegistryBuilder};

/// `#[derive(SyncModel)]`: see the crate `stratasync-derive` for its attributes.
#[cfg(feature = "derive")]
pub use stratasync_derive::SyncModel;

/// The `#[async_trait]` attribute of the `async-trait` crate, re-exported so
/// an application needs no dependency of its own for it.
///
/// [`SyncAuth`], [`ModelHooks`] and [`realtime::SocketHooks`] are declared
/// with it, so every implementation must carry it too:
///
/// ```
/// use stratasync_core::{async_trait, AuthRejection, AuthUser, SyncAuth};
///
/// struct MyAuth;
///
/// #[async_trait]
/// impl SyncAuth for MyAuth {
///     async fn verify_token(&self, token: &str) -> Result<AuthUser, AuthRejection> {
///         token.strip_prefix("token-").map(AuthUser::new).ok_or(AuthRejection::Invalid)
///     }
/// }
/// ```
///
/// Without the attribute, rustc answers E0195 ("lifetime parameters or
/// bounds on method `verify_token` do not match the trait declaration").
pub use async_trait::async_trait;

/// Embeds the SQL migrations of a folder into the binary, as a
/// [`storage::migrate::EmbeddedMigrations`] for [`storage::migrate::run`].
///
/// Diesel's `embed_migrations!`, usable without a dependency on
/// `diesel_migrations`: the path is relative to the directory of the
/// calling crate's `Cargo.toml`, and holds one folder per migration named
/// `<timestamp>_<name>` with an `up.sql` and optionally a `down.sql`.
/// Edits to existing migrations are tracked by Cargo; a newly added
/// migration folder is compiled in at the crate's next rebuild (a build
/// script printing `cargo:rerun-if-changed=migrations` forces one).
///
/// ```
/// use stratasync_core::storage::migrate::EmbeddedMigrations;
///
/// const MIGRATIONS: EmbeddedMigrations = stratasync_core::embed_migrations!("migrations");
/// ```
#[macro_export]
macro_rules! embed_migrations {
    ($path:literal) => {{
        // Diesel's macro writes its paths as `diesel_migrations::…`.
        use $crate::__private::diesel_migrations;
        diesel_migrations::embed_migrations!($path)
    }};
}

/// Re-exports used by generated code. Not public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::codec::{kind, write_int, write_str, Codec, KeyValue};
    pub use crate::composite_id::composite_id;
    pub use crate::error::MutationError;
    pub use crate::model::reference::{check_reference, Global, ReferenceGroup, ReferenceId, Referenceable};
    pub use crate::model::{
        ActionSet, CodecKind, FieldSpec, GroupKey, JsonObject, ModelKind, ModelSpec, NoHooks, SyncChanges, SyncModel,
        SyncStorage,
    };
    pub use crate::protocol::ActionKind;
    pub use crate::scope::ScopeFilter;
    pub use crate::storage::prepared::Prepared;
    pub use crate::storage::Conn;
    pub use chrono;
    pub use diesel;
    pub use diesel_async;
    pub use diesel_migrations;
    pub use futures_util::future::BoxFuture;
    pub use serde_json;
    pub use uuid;

    /// Implemented by SQL types that are `NOT NULL`; generated code requires
    /// it of every cursor column (a nullable cursor would stop keyset paging
    /// at the first NULL, docs/protocol.md §10 #8).
    #[diagnostic::on_unimplemented(
        message = "cursor column has the nullable SQL type `{Self}`",
        note = "keyset cursors must be NOT NULL columns; pick another cursor column"
    )]
    pub trait NotNullCursor {}
    impl<T> NotNullCursor for T where T: diesel::sql_types::SqlType<IsNull = diesel::sql_types::is_nullable::NotNull> {}

    /// `value` as a bind parameter of `column`'s SQL type: what Diesel's
    /// `AsExpression` makes of every data type (`Bound<SqlType, T>`), with
    /// only `ToSql` required. Generated code passes every value it compares
    /// with or writes to a column through here, so its queries need nothing
    /// of a field type but what the derive's schema checks assert
    /// (`FromSqlRow`/`StaticallySizedRow` and `ToSql` of the column's type).
    pub fn bind<C, T>(_column: C, value: T) -> diesel::internal::derives::as_expression::Bound<C::SqlType, T>
    where
        C: diesel::Expression,
        T: diesel::serialize::ToSql<C::SqlType, diesel::pg::Pg>,
    {
        diesel::internal::derives::as_expression::Bound::new(value)
    }

    /// Compile-time check, never called at run time: cursor column `C` is
    /// `NOT NULL`.
    pub fn cursor_not_null<C>(_column: C)
    where
        C: diesel::Expression,
        C::SqlType: NotNullCursor,
    {
    }

    /// What a custom `#[sync(scope = path)]` function returns for Diesel
    /// table `T`: the boxed `WHERE` condition selecting the rows the caller
    /// may see, written as
    /// `fn(&ScopeFilter) -> Scope<'_, tasks::table>`. (`BoxableExpression`
    /// is `Send` already; Diesel implements its query traits for exactly
    /// this `dyn` type, so no other bound may be added.)
    pub type Scope<'a, T> =
        Box<dyn diesel::BoxableExpression<T, diesel::pg::Pg, SqlType = diesel::sql_types::Bool> + 'a>;

    /// Boxes a future (generated storage methods return `BoxFuture`).
    pub fn boxed<'a, T>(f: impl std::future::Future<Output = T> + Send + 'a) -> BoxFuture<'a, T> {
        Box::pin(f)
    }

    /// The key of a row as a wire string (`""` for NULL).
    pub fn key_string<T: KeyValue>(value: &T) -> String {
        value.key_string().unwrap_or_default()
    }

    /// The error for a model id that the id type `T` cannot parse: a
    /// clear one for another spelling of a valid id (`urn:uuid:…`, upper
    /// case), else the id's codec error.
    pub fn model_id_error<T: KeyValue>(model_id: &str, kind: CodecKind) -> MutationError {
        if T::is_non_canonical(model_id) {
            MutationError::NonCanonicalModelId
        } else {
            MutationError::InvalidValue { kind, field: "id".to_owned() }
        }
    }

    /// Reads one field of normalized `data` as its Rust type, with its
    /// codec's `from_json`. Generated code passes
    /// `<Ty as Codec<K>>::from_json` rather than having this function
    /// require `Ty: Codec<K>`: a field whose type its codec cannot hold is
    /// then reported once, at the field, like every other use of its codec
    /// (a bound here would be a second, differently caused error).
    pub fn decode<T>(
        data: &JsonObject,
        wire: &'static str,
        kind: CodecKind,
        from_json: fn(&serde_json::Value) -> Option<T>,
    ) -> Result<Option<T>, MutationError> {
        match data.get(wire) {
            None => Ok(None),
            Some(v) => {
                from_json(v).map(Some).ok_or_else(|| MutationError::InvalidValue { kind, field: wire.to_owned() })
            }
        }
    }
}
