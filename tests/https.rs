//! HTTPS served directly (`[tls]`), against the real binary on loopback: a self-signed
//! certificate made here (rcgen), REST over HTTPS and `/api/live` over `wss://` on the
//! same port, nothing in plain text on it, and a client that does not trust the
//! certificate is refused at the handshake.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{creds, free_port, start_with};
use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

const NOW: &str = "2026-11-25T12:00:00Z";

/// A TLS client trusting `roots` only, speaking HTTP/1.1.
fn connector(roots: rustls::RootCertStore) -> tokio_rustls::TlsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

async fn tls_connect(
    connector: &tokio_rustls::TlsConnector,
    port: u16,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

/// One HTTP/1.1 request over TLS: the status code and the body.
async fn https_get(
    connector: &tokio_rustls::TlsConnector,
    port: u16,
    path: &str,
    token: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut tls = tls_connect(connector, port).await?;
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    tls.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n")
            .as_bytes(),
    )
    .await?;
    let mut response = String::new();
    tls.read_to_string(&mut response).await?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    Ok((status, body))
}

#[tokio::test(flavor = "multi_thread")]
async fn https_and_wss_are_served_with_the_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let config = dir.path().join("crmpulse.toml");
    std::fs::write(
        &config,
        format!(
            "[tls]\ncert_path = {:?}\nkey_path = {:?}\n",
            cert_path.display().to_string(),
            key_path.display().to_string()
        ),
    )
    .unwrap();
    let port = free_port();
    let data = dir.path().join("data");
    let mut server = start_with(port, &data, NOW, &["--config".as_ref(), config.as_os_str()]);

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(cert.cert.der().to_vec()))
        .unwrap();
    let trusted = connector(roots);
    let started = Instant::now();
    let (status, body) = loop {
        match https_get(&trusted, port, "/healthz", None).await {
            Ok(answer) => break answer,
            Err(e) => {
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "no HTTPS within 60 s: {e}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert_eq!(status, 200, "{body}");
    let health: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "ok");

    // REST with a token.
    let token = creds(port).token;
    let (status, body) = https_get(&trusted, port, "/api/me", Some(&token))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let me: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(me["role"], "admin");

    // `/api/live` over wss on the same port.
    let tls = tls_connect(&trusted, port).await.unwrap();
    let (mut ws, _) =
        tokio_tungstenite::client_async(format!("wss://localhost:{port}/api/live"), tls)
            .await
            .unwrap();
    ws.send(Message::text(
        json!({"op": "auth", "token": token}).to_string(),
    ))
    .await
    .unwrap();
    ws.send(Message::text(
        json!({"op": "subscribe", "id": "k", "section": "kpi", "params": {}}).to_string(),
    ))
    .await
    .unwrap();
    let snapshot = loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame within 10 s")
            .expect("the socket is open")
            .unwrap();
        let frame: Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
        assert_ne!(frame["type"], "error", "{frame}");
        if frame["type"] == "snapshot" {
            break frame;
        }
    };
    assert_eq!(snapshot["id"], "k");
    assert!(
        snapshot["data"]["active_conversations"].is_object(),
        "{snapshot}"
    );

    // Nothing in plain text on the TLS port.
    let mut plain = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), plain.read_to_end(&mut answer)).await;
    assert!(
        !String::from_utf8_lossy(&answer).contains("HTTP/1.1 200"),
        "served in plain text: {}",
        String::from_utf8_lossy(&answer)
    );

    // A client that does not trust the certificate is refused at the handshake.
    let untrusting = connector(rustls::RootCertStore::empty());
    let refused = tls_connect(&untrusting, port).await;
    assert!(refused.is_err(), "an untrusted certificate was accepted");

    let _ = server.kill();
    let _ = server.wait();
}

#[test]
fn a_tls_section_with_a_certificate_but_no_key_stops_the_server_naming_both_keys() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("crmpulse.toml");
    std::fs::write(&config, "[tls]\ncert_path = \"/nonexistent/cert.pem\"\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_crmpulse"))
        .args(common::now_args(NOW))
        .arg("--config")
        .arg(&config)
        .args([
            "run",
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("[tls] cert_path and key_path go together"),
        "{stderr}"
    );
}
