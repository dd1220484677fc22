//! Opening connections: the TLS settings of a database URL and the
//! [`Connector`] that the pool and the migrations share.
//!
//! The URL's `sslmode` is honoured as libpq does (default `prefer`):
//!
//! | `sslmode` | TLS | server certificate checked |
//! |---|---|---|
//! | `disable` | never | — |
//! | `prefer` | if the server offers it, else plain | no (chain only if `sslrootcert` is given) |
//! | `require` | always | no (chain only if `sslrootcert` is given) |
//! | `verify-ca` | always | chain up to a trusted root |
//! | `verify-full` | always | chain and host name |
//!
//! `sslrootcert=<path>` names a PEM file of trusted roots;
//! `sslrootcert=system`, or no `sslrootcert` with `verify-ca` /
//! `verify-full`, trusts the operating system's store. TLS is rustls (no
//! OpenSSL). Unlike libpq, a `prefer` handshake that fails is an error
//! rather than a retry without TLS, `~/.postgresql/root.crt` is not read,
//! and `sslmode=allow` is refused. `verify-ca`, `verify-full` and
//! `sslrootcert` need the URL form (`postgres://…?sslmode=…`); key/value
//! strings (`host=… sslmode=require`) support `disable`, `prefer` and
//! `require`.
//!
//! `sslmode=disable` connects exactly as `AsyncPgConnection::establish`
//! does.

use super::Conn;
use crate::tls::{self, Roots, TlsError, Verification};
use diesel::{ConnectionError, ConnectionResult};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use tokio_postgres_rustls::MakeRustlsConnect;

/// libpq's `sslmode`s (except `allow`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS when the server offers it, plain otherwise (the default).
    #[default]
    Prefer,
    /// TLS or no connection; the certificate is not checked.
    Require,
    /// TLS with the certificate chain checked, not the host name.
    VerifyCa,
    /// TLS with the chain and the host name checked.
    VerifyFull,
}

impl FromStr for SslMode {
    type Err = ConnectError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => return Err(ConnectError::SslMode(other.chars().take(32).collect())),
        })
    }
}

/// A database URL that cannot be used, or a pool that cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// `sslmode` has a value this crate does not support.
    #[error("unsupported sslmode `{0}` in the database URL (use disable, prefer, require, verify-ca or verify-full)")]
    SslMode(String),
    /// `sslrootcert=system` with a mode that would not check the host name.
    #[error("sslrootcert=system needs sslmode=verify-full (or no sslmode)")]
    SystemRootsNeedVerifyFull,
    /// The rest of the URL was refused by the PostgreSQL client.
    #[error("invalid database URL: {0}")]
    Url(String),
    /// The TLS settings could not be loaded.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The pool could not be built.
    #[error("could not build the connection pool: {0}")]
    Pool(#[from] deadpool::managed::BuildError),
}

/// Opens connections to one database, with or without TLS as its URL's
/// `sslmode` asks. Cheap to clone; the TLS configuration (root store
/// included) is built once.
#[derive(Clone)]
pub struct Connector {
    /// The URL without `sslmode` and `sslrootcert` (which the PostgreSQL
    /// client does not know).
    url: Arc<str>,
    mode: SslMode,
    /// `None` for `sslmode=disable`.
    tls: Option<(tokio_postgres::Config, MakeRustlsConnect)>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password.
        f.debug_struct("Connector").field("ssl_mode", &self.mode).finish_non_exhaustive()
    }
}

impl Connector {
    /// Reads the TLS settings of `database_url` and loads the roots it
    /// names. Fails on an unsupported `sslmode`, an unreadable root
    /// certificate file or a URL the PostgreSQL client refuses.
    pub fn new(database_url: &str) -> Result<Connector, ConnectError> {
        let params = TlsParams::split(database_url)?;
        let config = tokio_postgres::Config::from_str(&params.url).map_err(|e| ConnectError::Url(error_chain(&e)))?;
        let mode = match params.mode {
            Some(mode) => mode,
            None if params.root == Some(Roots::System) => SslMode::VerifyFull,
            // Key/value strings carry their own (libpq-compatible) sslmode.
            None => match config.get_ssl_mode() {
                tokio_postgres::config::SslMode::Disable => SslMode::Disable,
                tokio_postgres::config::SslMode::Require => SslMode::Require,
                _ => SslMode::Prefer,
            },
        };
        if params.root == Some(Roots::System) && mode != SslMode::VerifyFull {
            return Err(ConnectError::SystemRootsNeedVerifyFull);
        }
        let verification = match (mode, params.root) {
            (SslMode::Disable, _) => {
                return Ok(Connector { url: params.url.into(), mode, tls: None });
            }
            (SslMode::Prefer | SslMode::Require, None) => Verification::None,
            (SslMode::Prefer | SslMode::Require | SslMode::VerifyCa, root) => {
                Verification::Chain(Arc::new(tls::root_store(&root.unwrap_or(Roots::System))?))
            }
            (SslMode::VerifyFull, root) => {
                Verification::Full(Arc::new(tls::root_store(&root.unwrap_or(Roots::System))?))
            }
        };
        let mut config = config;
        config.ssl_mode(match mode {
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        });
        let connector = MakeRustlsConnect::new(tls::client_config(&verification)?);
        Ok(Connector { url: params.url.into(), mode, tls: Some((config, connector)) })
    }

    /// The `sslmode` in effect.
    pub fn ssl_mode(&self) -> SslMode {
        self.mode
    }

    /// The URL as the PostgreSQL client sees it (without `sslmode` and
    /// `sslrootcert`).
    pub(crate) fn client_url(&self) -> &str {
        &self.url
    }

    /// Opens one connection, with PostgreSQL's messages in English where
    /// the role may choose them (`SET lc_messages = 'C'`: the error
    /// classification reads them; a role that may not set it keeps the
    /// default).
    pub async fn establish(&self) -> ConnectionResult<Conn> {
        let mut conn = match &self.tls {
            None => AsyncPgConnection::establish(&self.url).await?,
            Some((config, tls)) => {
                let (client, connection) =
                    config.connect(tls.clone()).await.map_err(|e| ConnectionError::BadConnection(error_chain(&e)))?;
                AsyncPgConnection::try_from_client_and_connection(client, connection).await?
            }
        };
        english_messages(&mut conn).await;
        Ok(conn)
    }
}

/// Asks for PostgreSQL's untranslated messages (`lc_messages = 'C'`) on a
/// new connection. Diesel keeps no SQLSTATE, so `fault::classify` tells a
/// statement or lock timeout, a cancel or a shutdown by its English
/// message: on a server whose messages are translated, those would read as
/// the transaction's own failure instead of a retryable one. The setting
/// needs a superuser or, from PostgreSQL 15, `GRANT SET ON PARAMETER
/// lc_messages TO <role>`; without it the connection keeps the server's
/// default (English unless the server was set up otherwise), and that is
/// said once in the log.
async fn english_messages(conn: &mut Conn) {
    use diesel_async::SimpleAsyncConnection;
    static REFUSED: std::sync::Once = std::sync::Once::new();
    if let Err(e) = conn.batch_execute("SET lc_messages = 'C'").await {
        REFUSED.call_once(|| {
            tracing::warn!(
                error = %e,
                "cannot set lc_messages = 'C' for this role: if the server's messages are not English, \
                 timeouts and cancels are not recognized as retryable"
            );
        });
    }
}

/// Opens one connection to `database_url`, honouring its TLS settings (a
/// drop-in for `AsyncPgConnection::establish`). Each call loads the roots
/// the URL names; keep a [`Connector`] to open many.
pub async fn establish(database_url: &str) -> ConnectionResult<Conn> {
    let connector = Connector::new(database_url).map_err(|e| ConnectionError::InvalidConnectionUrl(e.to_string()))?;
    connector.establish().await
}

/// An error and its causes on one line: the PostgreSQL client's own
/// message for a failed handshake is only "error performing TLS handshake".
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// The URL split into what the PostgreSQL client understands and the TLS
/// parameters it does not.
#[derive(Debug, PartialEq)]
struct TlsParams {
    url: String,
    mode: Option<SslMode>,
    root: Option<Roots>,
}

impl TlsParams {
    fn split(database_url: &str) -> Result<TlsParams, ConnectError> {
        let unchanged = || TlsParams { url: database_url.to_owned(), mode: None, root: None };
        let is_url = database_url.starts_with("postgres://") || database_url.starts_with("postgresql://");
        let Some((base, query)) = database_url.split_once('?').filter(|_| is_url) else {
            return Ok(unchanged());
        };
        let (mut mode, mut root) = (None, None);
        let mut kept = Vec::new();
        // Other parameters are kept verbatim (re-encoding could change them).
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match decode(key).as_str() {
                "sslmode" => mode = Some(decode(value).parse()?),
                "sslrootcert" => {
                    root = Some(match decode(value).as_str() {
                        "system" => Roots::System,
                        path => Roots::PemFile(PathBuf::from(path)),
                    })
                }
                _ => kept.push(pair),
            }
        }
        let url = if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) };
        Ok(TlsParams { url, mode, root })
    }
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(url: &str) -> TlsParams {
        TlsParams::split(url).unwrap()
    }

    #[test]
    fn tls_parameters_are_taken_out_of_the_url() {
        let plain = "postgres://u:p@db:5432/app";
        assert_eq!(split(plain), TlsParams { url: plain.into(), mode: None, root: None });
        assert_eq!(
            split("postgres://db/app?application_name=a%20b&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&connect_timeout=3"),
            TlsParams {
                url: "postgres://db/app?application_name=a%20b&connect_timeout=3".into(),
                mode: Some(SslMode::VerifyFull),
                root: Some(Roots::PemFile("/etc/ca.pem".into())),
            }
        );
        assert_eq!(
            split("postgresql://db/app?sslrootcert=system"),
            TlsParams { url: "postgresql://db/app".into(), mode: None, root: Some(Roots::System) }
        );
        // Key/value strings are the PostgreSQL client's to parse.
        let kv = "host=db sslmode=require";
        assert_eq!(split(kv), TlsParams { url: kv.into(), mode: None, root: None });
    }

    #[test]
    fn modes() {
        let mode = |url: &str| Connector::new(url).map(|c| c.ssl_mode());
        assert_eq!(mode("postgres://db/app").unwrap(), SslMode::Prefer);
        assert_eq!(mode("postgres://db/app?sslmode=disable").unwrap(), SslMode::Disable);
        assert_eq!(mode("postgres://db/app?sslmode=require").unwrap(), SslMode::Require);
        assert_eq!(mode("host=db sslmode=require").unwrap(), SslMode::Require);
        assert_eq!(mode("host=db sslmode=disable").unwrap(), SslMode::Disable);
        assert_eq!(mode("host=db").unwrap(), SslMode::Prefer);
        let err = mode("postgres://db/app?sslmode=allow").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unsupported sslmode `allow` in the database URL (use disable, prefer, require, verify-ca or verify-full)"
        );
        assert!(matches!(
            mode("postgres://db/app?sslmode=require&sslrootcert=system"),
            Err(ConnectError::SystemRootsNeedVerifyFull)
        ));
        let err = mode("postgres://db/app?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem").unwrap_err();
        assert!(err.to_string().starts_with("cannot read the root certificate file /nonexistent/ca.pem"), "{err}");
        assert!(matches!(mode("postgres://db/app?nonsense=1"), Err(ConnectError::Url(_))));
    }

    #[test]
    fn the_url_is_not_in_debug_output() {
        let connector = Connector::new("postgres://u:secret@db/app?sslmode=disable").unwrap();
        assert!(!format!("{connector:?}").contains("secret"));
        assert_eq!(connector.client_url(), "postgres://u:secret@db/app");
    }
}
