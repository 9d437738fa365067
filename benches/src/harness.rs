//! What the benchmarks share: a full embedded stack on a loopback port, a WebSocket
//! client of the KPI strip, and the process's core count and resident memory.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use schemas::Clock;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crmpulse::config::Config;
use crmpulse::stack::{Source, Stack};

/// A client WebSocket of the benchmarks.
pub(crate) type ClientSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects to `/api/live` on `addr` (with `ws_config`, or the defaults), authenticates
/// with `token` when the server wants one, subscribes to the KPI strip and waits for
/// its snapshot. Returns the socket and the snapshot's body.
pub(crate) async fn subscribe_kpi(
    addr: std::net::SocketAddr,
    token: Option<&str>,
    ws_config: Option<WebSocketConfig>,
) -> anyhow::Result<(ClientSocket, Value)> {
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(
        format!("ws://{addr}/api/live"),
        ws_config,
        false,
    )
    .await
    .context("connecting the WebSocket")?;
    if let Some(token) = token {
        ws.send(Message::text(
            json!({"op": "auth", "token": token}).to_string(),
        ))
        .await?;
    }
    ws.send(Message::text(
        json!({"op": "subscribe", "id": "kpi", "section": "kpi", "params": {}}).to_string(),
    ))
    .await?;
    while let Some(msg) = ws.next().await {
        let msg: Value = serde_json::from_str(msg?.to_text()?)?;
        if msg["type"] == "snapshot" {
            return Ok((ws, msg["data"].clone()));
        }
        anyhow::ensure!(msg["type"] != "error", "client refused: {msg}");
    }
    anyhow::bail!("the server closed the connection before the snapshot")
}

/// A WebSocket client subscribed to the KPI strip, used by the latency benchmarks: a
/// newly opened conversation is "seen" when `active_conversations.total` counts it.
pub(crate) struct KpiProbe {
    ws: ClientSocket,
    /// The KPI body as the client holds it (snapshot plus applied patches).
    data: Value,
    /// `active_conversations.total` in the snapshot, before any benchmark event.
    base: i64,
    /// Every recorded probe: its send instant and its latency in µs, in send order.
    pub(crate) samples: Vec<(Instant, u64)>,
}

impl KpiProbe {
    /// Connects to `/api/live` on `addr`, authenticates with `token` when the server
    /// wants one, subscribes to the KPI strip and waits for its snapshot.
    pub(crate) async fn connect(
        addr: std::net::SocketAddr,
        token: Option<&str>,
    ) -> anyhow::Result<Self> {
        let (ws, data) = subscribe_kpi(addr, token, None).await?;
        let base = Self::active_total(&data);
        Ok(Self {
            ws,
            data,
            base,
            samples: Vec::new(),
        })
    }

    fn active_total(data: &Value) -> i64 {
        data["active_conversations"]["total"].as_i64().unwrap_or(-1)
    }

    /// Applies deltas until `total` new conversations show or `deadline` passes, and
    /// records for each the time from its send instant (in `sent`, in send order) to
    /// the delta that first counted it.
    pub(crate) async fn record(
        &mut self,
        sent: &Mutex<Vec<Instant>>,
        total: usize,
        deadline: Instant,
    ) -> anyhow::Result<Histogram<u64>> {
        let mut hist = Histogram::<u64>::new(3)?;
        let mut seen = 0usize;
        while seen < total && Instant::now() < deadline {
            let Ok(Some(msg)) = tokio::time::timeout(Duration::from_secs(2), self.ws.next()).await
            else {
                continue;
            };
            let msg: Value = serde_json::from_str(msg?.to_text()?)?;
            if msg["type"] != "delta" {
                continue;
            }
            let patch: json_patch::Patch = serde_json::from_value(msg["patch"].clone())?;
            json_patch::patch(&mut self.data, &patch)?;
            let now_seen = usize::try_from(Self::active_total(&self.data) - self.base)
                .unwrap_or(0)
                .min(total);
            let received = Instant::now();
            let sent = sent.lock().expect("sent lock");
            for at in &sent[seen.min(sent.len())..now_seen.min(sent.len())] {
                let micros = received.duration_since(*at).as_micros() as u64;
                hist.record(micros)?;
                self.samples.push((*at, micros));
            }
            seen = seen.max(now_seen.min(sent.len()));
        }
        Ok(hist)
    }
}

/// Conversations a latency benchmark opens, one POST each ([`open_conversations`]).
pub(crate) struct Openings {
    /// Their account.
    pub(crate) account_id: u64,
    /// Event and conversation ids are `{prefix}-{k}`.
    pub(crate) prefix: String,
    /// Per second.
    pub(crate) rate: u64,
    /// In all.
    pub(crate) count: u64,
}

/// Opens `openings` on `addr`'s `/api/v1/events` (with `key` when the server wants
/// one), each stamped with `clock`'s now; pushes each send instant into `sent`, in
/// order, for [`KpiProbe::record`].
pub(crate) fn open_conversations(
    addr: std::net::SocketAddr,
    key: Option<String>,
    openings: Openings,
    sent: std::sync::Arc<Mutex<Vec<Instant>>>,
    clock: Clock,
) -> tokio::task::JoinHandle<()> {
    let Openings {
        account_id,
        prefix,
        rate,
        count,
    } = openings;
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        let url = format!("http://{addr}/api/v1/events");
        let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate.max(1)));
        for k in 0..count {
            tick.tick().await;
            let event = json!({
                "event_id": format!("{prefix}-{k}"), "account_id": account_id,
                "occurred_at": schemas::event::format_rfc3339_ms(clock.now_ms()),
                "type": "conversation_opened", "conversation_id": format!("{prefix}-{k}"),
                "customer_id": prefix, "channel": "whatsapp", "inbox_id": prefix, "origin": "inbound",
            });
            sent.lock().expect("sent lock").push(Instant::now());
            let mut request = client.post(&url).json(&json!([event]));
            if let Some(key) = &key {
                request = request.bearer_auth(key);
            }
            let _ = request.send().await;
        }
    })
}

/// A full embedded stack serving on a free loopback port, for the benchmarks that
/// go through HTTP and WebSocket.
pub(crate) struct BenchServer {
    /// Where it serves.
    pub(crate) addr: std::net::SocketAddr,
    /// Ends the serving task.
    stop: tokio::sync::oneshot::Sender<()>,
    /// The serving task; hands the stack back to be shut down.
    task: tokio::task::JoinHandle<anyhow::Result<Stack>>,
}

impl BenchServer {
    /// Builds the embedded stack over the event log in `dir` and serves it on a free
    /// loopback port with `credentials`.
    pub(crate) async fn start(
        dir: &std::path::Path,
        config: &Config,
        credentials: crmpulse::auth::Credentials,
        clock: Clock,
    ) -> anyhow::Result<Self> {
        let embedded = Stack::build(config, Source::EventLog(dir.to_owned()), clock)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let config = config.clone();
        let task = tokio::spawn(async move {
            let settings = query_api::Settings::new(config.accounts.clone());
            embedded
                .serve_on(&config, &credentials, settings, listener, async {
                    let _ = stopped.await;
                })
                .await
                .map(|()| embedded)
        });
        Ok(Self { addr, stop, task })
    }

    /// Stops serving and shuts the stack down.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(());
        if let Ok(Ok(embedded)) = self.task.await {
            embedded.shutdown();
        }
    }
}

/// A temporary directory under `parent`, or under the system's when `None`.
pub(crate) fn tempdir_under(
    parent: Option<&std::path::Path>,
) -> std::io::Result<tempfile::TempDir> {
    match parent {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
}

/// Cores available to this process.
pub(crate) fn num_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Peak resident memory of this process, in MiB (`VmHWM`).
pub(crate) fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// Resident memory of this process, in MiB (`VmRSS`).
pub(crate) fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}
