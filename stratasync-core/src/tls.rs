//! TLS client settings shared by the PostgreSQL pool and the Redis fan-out:
//! rustls with the `ring` provider, trusted roots from the system store or
//! a PEM file, and the three levels of server checking that libpq's
//! `sslmode`s ask for (none, chain only, chain and host name).

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A TLS setup failure (before any connection is made).
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The root certificate file could not be read or parsed.
    #[error("cannot read the root certificate file {}: {message}", path.display())]
    RootCertFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The root certificate file holds no usable certificate.
    #[error("the root certificate file {} holds no usable certificate", path.display())]
    NoRootCert {
        /// The file.
        path: PathBuf,
    },
    /// The system's root store holds no usable certificate.
    #[error("the system root store holds no usable certificate{0}")]
    NoSystemRoots(String),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// Where trusted root certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Roots {
    /// The operating system's store (`/etc/ssl/certs` and the like).
    System,
    /// Every certificate of a PEM file.
    PemFile(PathBuf),
}

/// How much of the server's certificate is checked.
#[derive(Debug, Clone)]
pub(crate) enum Verification {
    /// Nothing: the connection is encrypted but the server is not
    /// authenticated (libpq's `prefer` and `require`).
    None,
    /// The chain up to a trusted root, not the host name (`verify-ca`).
    Chain(Arc<RootCertStore>),
    /// The chain and the host name (`verify-full`).
    Full(Arc<RootCertStore>),
}

/// The crypto provider every configuration of this crate uses.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Installs `ring` as the process's default rustls provider unless one is
/// installed already. Libraries that build their own rustls configuration
/// from the process default (the `redis` crate does) need one when more
/// than one provider is compiled in.
pub fn install_default_provider() {
    // An error only means another provider was installed first: keep it.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Loads trusted roots.
pub fn root_store(roots: &Roots) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    match roots {
        Roots::System => {
            let loaded = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(loaded.certs);
            if added == 0 {
                let why = loaded.errors.first().map(|e| format!(" ({e})")).unwrap_or_default();
                return Err(TlsError::NoSystemRoots(why));
            }
        }
        Roots::PemFile(path) => {
            let certs = pem_certificates(path)?;
            let (added, _) = store.add_parsable_certificates(certs);
            if added == 0 {
                return Err(TlsError::NoRootCert { path: path.clone() });
            }
        }
    }
    Ok(store)
}

fn pem_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let failed =
        |e: rustls::pki_types::pem::Error| TlsError::RootCertFile { path: path.to_owned(), message: e.to_string() };
    CertificateDer::pem_file_iter(path).map_err(failed)?.collect::<Result<Vec<_>, _>>().map_err(failed)
}

/// A client configuration that checks the server as `verification` says.
pub(crate) fn client_config(verification: &Verification) -> Result<ClientConfig, TlsError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions()?;
    let config = match verification {
        Verification::Full(roots) => builder.with_root_certificates(roots.clone()).with_no_client_auth(),
        Verification::Chain(roots) => {
            let inner = WebPkiServerVerifier::builder_with_provider(roots.clone(), provider)
                .build()
                .map_err(|e| rustls::Error::General(e.to_string()))?;
            builder.dangerous().with_custom_certificate_verifier(Arc::new(ChainOnly(inner))).with_no_client_auth()
        }
        Verification::None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth(),
    };
    Ok(config)
}

/// Accepts any server certificate (libpq's `require` without a root
/// certificate); the handshake's signatures are still checked.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Checks the chain up to a trusted root but not the host name (libpq's
/// `verify-ca`). rustls checks the chain before the name, so a name
/// mismatch is the only error this verifier forgives.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
