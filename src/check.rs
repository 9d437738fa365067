//! `crmpulse check <URL>`: a smoke test of a running deployment, from outside, as a
//! user's browser reaches it. Four steps, each printed as `ok` or `FAIL` with what it
//! saw; the first failure stops the check and the command exits 1 with its reason:
//!
//! 1. `GET /healthz` answers `status: ok`;
//! 2. `GET /api/me` with the token: the server accepts it and returns its claims (the
//!    token round trip);
//! 3. `GET /api/dashboard/<section>` answers a body of that section;
//! 4. `/api/live`: authenticated, subscribed to the same section, its first snapshot
//!    arrives within the timeout.
//!
//! `--ready` checks only `GET /readyz` (no token): the probe of a container health
//! check or a systemd watchdog, run beside the server.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// `crmpulse check` arguments.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The deployment's base URL, e.g. `https://crmpulse.example.com` (`http://` and
    /// `https://`; the WebSocket is `ws://` or `wss://` on the same host).
    pub url: String,
    /// A dashboard token (`crmpulse token`); not needed with `--ready`.
    #[arg(
        long,
        env = "CRMPULSE_TOKEN",
        hide_env_values = true,
        required_unless_present = "ready"
    )]
    pub token: Option<String>,
    /// Check only `GET /readyz` (the source read to its start contents, the views
    /// caught up): exits 0 when ready, 1 otherwise. Needs no token; for health checks.
    #[arg(long)]
    pub ready: bool,
    /// The section read over REST and the WebSocket.
    #[arg(long, default_value = "kpi")]
    pub section: String,
    /// Longest wait for each step, seconds.
    #[arg(long, default_value_t = 10)]
    pub timeout_s: u64,
    /// A PEM file of the CA that signed the server's certificate (a private CA);
    /// otherwise the public roots are trusted.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
}

/// Runs the check; `Err` names the step that failed and why.
///
/// # Errors
/// The first step that fails.
pub fn run(args: &CheckArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(check(args))
}

fn ok(step: &str, what: &str) {
    println!("ok    {step:<8} {what}");
}

async fn check(args: &CheckArgs) -> anyhow::Result<()> {
    let base = args.url.trim_end_matches('/').to_owned();
    let timeout = Duration::from_secs(args.timeout_s);
    let ca = args
        .ca_file
        .as_ref()
        .map(|p| std::fs::read(p).with_context(|| format!("--ca-file {}", p.display())))
        .transpose()?;
    let mut http = reqwest::Client::builder().timeout(timeout);
    if let Some(pem) = &ca {
        http = http.add_root_certificate(
            reqwest::Certificate::from_pem(pem).context("--ca-file: not a PEM certificate")?,
        );
    }
    let http = http.build()?;

    let get = |path: &str, token: bool| {
        let mut req = http.get(format!("{base}{path}"));
        if token && let Some(t) = &args.token {
            req = req.bearer_auth(t);
        }
        async move {
            let res = req.send().await.map_err(|e| {
                // reqwest's own message hides the cause (refused, TLS, timeout).
                let mut chain = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    chain.push_str(&format!(": {s}"));
                    source = s.source();
                }
                anyhow::anyhow!(chain)
            })?;
            let status = res.status();
            let body: Value = res.json().await.unwrap_or(Value::Null);
            if !status.is_success() {
                bail!(
                    "HTTP {status}: {}",
                    body["error"]["message"]
                        .as_str()
                        .unwrap_or("no error message")
                );
            }
            Ok::<_, anyhow::Error>(body)
        }
    };

    if args.ready {
        let url = format!("{base}/readyz");
        let res = http
            .get(&url)
            .send()
            .await
            .with_context(|| format!("FAIL  readyz   GET {url}"))?;
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        if !status.is_success() || body["ready"] != true {
            bail!("FAIL  readyz   GET /readyz answered HTTP {status}: {body}");
        }
        ok(
            "readyz",
            &format!("ready, events_consumed {}", body["events_consumed"]),
        );
        return Ok(());
    }
    if args.token.is_none() {
        bail!("--token (or CRMPULSE_TOKEN) is needed for the full check");
    }

    let health = get("/healthz", false)
        .await
        .context("FAIL  healthz  GET /healthz")?;
    if health["status"] != "ok" {
        bail!("FAIL  healthz  GET /healthz answered {health}");
    }
    ok(
        "healthz",
        &format!(
            "progress {}, caught_up {}, events_consumed {}",
            health["progress"], health["caught_up"], health["events_consumed"]
        ),
    );

    let me = get("/api/me", true)
        .await
        .context("FAIL  token    GET /api/me with the token")?;
    ok(
        "token",
        &format!(
            "accepted: sub {}, account {}, role {}",
            me["sub"], me["account_id"], me["role"]
        ),
    );

    let started = Instant::now();
    let path = format!("/api/dashboard/{}", args.section);
    let body = get(&path, true)
        .await
        .with_context(|| format!("FAIL  section  GET {path}"))?;
    if body["section"] != args.section.as_str() {
        bail!(
            "FAIL  section  GET {path} answered a body of section {}",
            body["section"]
        );
    }
    ok(
        "section",
        &format!(
            "{} at progress {} in {} ms",
            args.section,
            body["progress"],
            started.elapsed().as_millis()
        ),
    );

    let started = Instant::now();
    let first = tokio::time::timeout(timeout, live_first(&base, args, ca.as_deref()))
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "FAIL  live     no snapshot on /api/live within {} s",
                args.timeout_s
            )
        })?
        .context("FAIL  live     /api/live")?;
    ok(
        "live",
        &format!(
            "first {} in {} ms",
            first["type"].as_str().unwrap_or("message"),
            started.elapsed().as_millis()
        ),
    );
    Ok(())
}

/// Connects to `/api/live`, authenticates, subscribes, and returns the first message
/// about the subscription.
async fn live_first(base: &str, args: &CheckArgs, ca: Option<&[u8]>) -> anyhow::Result<Value> {
    let url = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}/api/live")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}/api/live")
    } else {
        bail!("the URL must start with http:// or https://");
    };
    let parsed = url::Url::parse(&url)?;
    let host = parsed.host_str().context("no host in the URL")?.to_owned();
    let port = parsed.port_or_known_default().context("no port")?;
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .with_context(|| format!("connecting to {host}:{port}"))?;
    if parsed.scheme() == "wss" {
        let mut roots = rustls::RootCertStore::empty();
        match ca {
            Some(pem) => {
                use rustls::pki_types::CertificateDer;
                use rustls::pki_types::pem::PemObject as _;
                for cert in CertificateDer::pem_slice_iter(pem) {
                    roots.add(cert.context("--ca-file")?)?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from(host.clone())?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .context("TLS handshake")?;
        first_snapshot(&url, tls, args).await
    } else {
        first_snapshot(&url, tcp, args).await
    }
}

/// The WebSocket part of [`live_first`] over an open connection.
async fn first_snapshot<S>(url: &str, stream: S, args: &CheckArgs) -> anyhow::Result<Value>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut ws, _) = tokio_tungstenite::client_async(url, stream)
        .await
        .context("WebSocket upgrade")?;
    ws.send(Message::text(
        json!({"op": "auth", "token": args.token}).to_string(),
    ))
    .await?;
    ws.send(Message::text(
        json!({"op": "subscribe", "id": "check", "section": args.section, "params": {}})
            .to_string(),
    ))
    .await?;
    while let Some(frame) = ws.next().await {
        match frame? {
            Message::Text(text) => {
                let v: Value = serde_json::from_str(&text)?;
                match v["type"].as_str() {
                    Some("error") => bail!("error frame: {}", v["message"]),
                    _ if v["id"] == "check" => {
                        let _ = ws.close(None).await;
                        return Ok(v);
                    }
                    _ => {}
                }
            }
            Message::Close(frame) => bail!(
                "closed by the server: {}",
                frame.map_or_else(String::new, |f| format!("{} {}", f.code, f.reason))
            ),
            _ => {}
        }
    }
    bail!("the connection ended before a snapshot")
}
