//! Which certificates are trusted for `https://` (a student's node or a teacher's proxy
//! behind ngrok):
//! the system's roots, and also the file `SSL_CERT_FILE` names when it is set, so a test
//! or a classroom with its own CA works without touching the system.

use std::sync::Arc;

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

/// Where Debian, Fedora and Alpine keep the system's bundle (read as well as whatever
/// `rustls-native-certs` finds, because that crate reads only `SSL_CERT_FILE` when it is set).
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// The TLS settings for every https node.
pub fn client_config() -> ClientConfig {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    let mut files: Vec<String> = SYSTEM_BUNDLES.iter().map(|s| s.to_string()).collect();
    if let Ok(extra) = std::env::var("SSL_CERT_FILE") {
        files.push(extra);
    }
    for file in files {
        if let Ok(certs) = CertificateDer::pem_file_iter(&file) {
            for cert in certs.flatten() {
                let _ = roots.add(cert);
            }
        }
    }
    if roots.is_empty() {
        tracing::warn!(
            "no trusted certificates found: https nodes will fail (install ca-certificates)"
        );
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// A connector for `http://` and `https://` URLs alike, with these roots, HTTP/1.1.
pub fn connector() -> HttpsConnector<HttpConnector> {
    wrap(HttpConnector::new())
}

/// The same over a connector with a resolver of its own (the proxy's guarded one).
pub fn wrap<R>(mut http: HttpConnector<R>) -> HttpsConnector<HttpConnector<R>> {
    http.enforce_http(false);
    http.set_nodelay(true);
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(client_config())
        .https_or_http()
        .enable_http1()
        .wrap_connector(http)
}
