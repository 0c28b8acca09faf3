//! Node URLs as students give them: `https://` with a certificate from a CA the proxy is
//! told about through `SSL_CERT_FILE` (a student's ngrok URL, in miniature), a trailing
//! slash, and a path prefix in front of the API.
//!
//! `SSL_CERT_FILE` is read when a `Proxy` is created and this binary sets it, so these
//! tests live in their own file: the variable changes nothing for the other tests.

#[path = "../../storage/tests/common/mod.rs"]
mod common;
mod support;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use common::{get, post};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use serde_json::json;
use storage::http::json_text;
use support::{start_proxy, start_scripted, start_spy, url, value_on, yaml};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// A test CA and a certificate it signed for `localhost`.
struct Pki {
    /// The server side of TLS, with the certificate the CA signed.
    server: Arc<ServerConfig>,
}

/// Makes the CA and the server certificate once and points `SSL_CERT_FILE` at the CA,
/// before any test of this binary creates a `Proxy`.
fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, "kv test CA");
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key).unwrap();

        let key = KeyPair::generate().unwrap();
        let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        leaf.distinguished_name
            .push(DnType::CommonName, "localhost");
        let cert = leaf.signed_by(&key, &ca_cert, &ca_key).unwrap();

        // Under cargo's scratch folder for tests: the file must outlive every test here.
        let ca_file = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("proxy-https-test-ca-{}.pem", std::process::id()));
        std::fs::write(&ca_file, ca_cert.pem()).unwrap();
        std::env::set_var("SSL_CERT_FILE", &ca_file);

        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let chain: Vec<CertificateDer<'static>> = vec![cert.der().clone()];
        let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let server = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, private)
            .unwrap();
        Pki {
            server: Arc::new(server),
        }
    })
}

/// A TLS terminator: accepts TLS on a free port with the `localhost` certificate and
/// passes the plain bytes on to `backend`, as ngrok does for a student's node.
async fn tls_front(backend: SocketAddr) -> (SocketAddr, JoinHandle<()>) {
    let acceptor = TlsAcceptor::from(pki().server.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    (addr, task)
}

/// A node behind `https://localhost:PORT/` (trailing slash), with a certificate from the
/// CA in `SSL_CERT_FILE`: puts and gets work, and the node sees `Host: localhost:PORT`,
/// the ngrok header and paths without a doubled slash.
#[tokio::test]
async fn an_https_node_with_a_trailing_slash_works() {
    let _ = pki();
    let spy = start_spy("kv1", Duration::ZERO).await;
    let (front, _task) = tls_front(spy.node.addr).await;
    let node_url = format!("https://localhost:{}/", front.port());
    let (proxy, _) = start_proxy(&yaml("sharding", &[("kv1", node_url)], "")).await;

    let reply = post(proxy.addr, "/put?key=secure", r#"{"value": "over tls"}"#).await;
    assert_eq!(reply.expect_json(200)["node"], "kv1");
    let reply = get(proxy.addr, "/get?key=secure").await;
    assert_eq!(reply.expect_json(200)["value"], "over tls");
    assert_eq!(
        value_on(spy.node.addr, "secure").await,
        Some(json!("over tls"))
    );

    let seen = spy.log.list();
    assert!(seen.len() >= 2, "{seen:#?}");
    for s in &seen[..2] {
        assert!(
            s.path_and_query.starts_with("/put?") || s.path_and_query.starts_with("/get?"),
            "{s:?}"
        );
        assert!(!s.path_and_query.contains("//"), "{s:?}");
        assert_eq!(
            s.header("host"),
            Some(format!("localhost:{}", front.port()).as_str())
        );
        assert_eq!(s.header("ngrok-skip-browser-warning"), Some("1"), "{s:?}");
    }
    let health = get(proxy.addr, "/health").await.expect_json(200);
    assert_eq!(health["nodes"][0]["up"], true, "{health}");
}

/// A certificate the proxy does not trust is a 502 that says TLS failed and how to fix it.
#[tokio::test]
async fn an_untrusted_certificate_is_named() {
    let _ = pki();
    let spy = start_spy("kv1", Duration::ZERO).await;
    let (front, _task) = tls_front(spy.node.addr).await;
    // 127.0.0.1 is not a name the certificate was made for.
    let node_url = format!("https://127.0.0.1:{}", front.port());
    let (proxy, _) = start_proxy(&yaml("sharding", &[("kv1", node_url)], "")).await;
    let body = get(proxy.addr, "/get?key=k").await.expect_error(502);
    let sentence = body["error"].as_str().unwrap();
    assert!(sentence.contains("TLS failed"), "{sentence}");
    assert!(
        spy.log.list().is_empty(),
        "a request got through: {:#?}",
        spy.log.list()
    );
}

/// A node URL with a path prefix (`http://host:port/alice/`) keeps it: the node's API is
/// reached at `/alice/put` and `/alice/get`.
#[tokio::test]
async fn a_path_prefix_in_the_node_url_is_kept() {
    let server = start_scripted(|seen| {
        let path = seen.path_and_query.split('?').next().unwrap_or_default();
        match path {
            "/alice/put" => json_text(hyper::StatusCode::OK, r#"{"message":"stored"}"#.into()),
            "/alice/get" => json_text(hyper::StatusCode::OK, r#"{"value":"hers"}"#.into()),
            other => json_text(
                hyper::StatusCode::NOT_FOUND,
                format!(r#"{{"error":"no {other}"}}"#),
            ),
        }
    })
    .await;
    let node_url = format!("{}/alice/", url(server.node.addr));
    let (proxy, _) = start_proxy(&yaml("sharding", &[("alice", node_url)], "")).await;

    let reply = post(proxy.addr, "/put?key=k", r#"{"value": "hers"}"#).await;
    assert_eq!(reply.expect_json(200)["message"], "stored");
    let reply = get(proxy.addr, "/get?key=k").await;
    assert_eq!(reply.expect_json(200)["value"], "hers");
    let paths: Vec<String> = server
        .log
        .list()
        .into_iter()
        .map(|s| s.path_and_query)
        .collect();
    assert_eq!(paths, vec!["/alice/put?key=k", "/alice/get?key=k"]);
    assert_eq!(server.log.list()[0].body.as_ref(), br#"{"value": "hers"}"#);
}
