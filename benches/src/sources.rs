//! `crmpulse-bench sources`: the provider webhook routes (`ingest::sources`), payloads/s
//! and events/s, for WhatsApp Cloud API and Chatwoot bodies.
//!
//! Each payload shape is measured four ways:
//! - the mapping alone (`whatsapp::map`, `chatwoot::map`), on one thread;
//! - through the route (signature checked, mapped, written durably to a fresh embedded
//!   log on disk, answered) with 1 sender, then with `--senders` concurrent senders;
//! - the same payloads delivered again to that log: Meta's and Chatwoot's redeliveries,
//!   which must store nothing.
//!
//! Every payload has its own ids (wamids, Chatwoot message ids), so the first delivery
//! measures storing and only the redelivery measures the duplicate path. Every answer
//! is checked, and the log must hold exactly the events sent: a figure with a lost,
//! dead-lettered or duplicated event is an error, not a figure.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::Context as _;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Request, header};
use clap::Args;
use hdrhistogram::Histogram;
use ingest::EventLog;
use ingest::auth::IngestAuth;
use ingest::sources::{self, ChatwootSource, SourcesConfig, WhatsappSource, chatwoot, whatsapp};
use schemas::Clock;
use serde_json::Value;
use tower::ServiceExt as _;

use crate::harness::num_cores;
use crmpulse::config::Config;

/// Arguments of `crmpulse-bench sources`.
#[derive(Debug, Args)]
pub struct SourcesArgs {
    /// Distinct payloads of each shape, delivered by each route run.
    #[arg(long, default_value_t = 20_000)]
    pub payloads: usize,
    /// Concurrent senders of the concurrent route runs (a 1-sender run is always
    /// measured as well).
    #[arg(long, default_value_t = 8)]
    pub senders: usize,
    /// Send over a loopback TCP socket (reqwest → axum::serve) instead of calling the
    /// router in-process with `tower::ServiceExt::oneshot`.
    #[arg(long)]
    pub loopback: bool,
    /// Where the temporary event logs go (default: the system's temporary directory);
    /// it should be the disk a data dir would be on, fsync being most of the cost.
    #[arg(long)]
    pub data_dir: Option<std::path::PathBuf>,
}

/// The WhatsApp account's business phone number (the fixtures' `phone_number_id`).
const PHONE: &str = "106540352242922";
const WHATSAPP_ACCOUNT: u64 = 7;
const WHATSAPP_SECRET: &str = "bench_app_secret";
const CHATWOOT_ACCOUNT: u64 = 3;
const CHATWOOT_TOKEN: &str = "cw-bench-token-0123456789abcdef";
const CHATWOOT_SECRET: &str = "bench_webhook_secret";
/// The first Chatwoot message id given to a payload (the fixtures use 5000..5003).
const CHATWOOT_FIRST_ID: u64 = 1_000_000;

/// Bodies the payloads are made from: the ingest tests' fixtures, which follow the
/// providers' own serializers (`ingest/tests/fixtures/*/SHAPES.md`).
const STATUSES_LIFECYCLE: &str =
    include_str!("../../ingest/tests/fixtures/whatsapp/statuses_lifecycle.json");
const MESSAGES_MIXED_BATCH: &str =
    include_str!("../../ingest/tests/fixtures/whatsapp/messages_mixed_batch.json");
const MESSAGES_TEXT: &str = include_str!("../../ingest/tests/fixtures/whatsapp/messages_text.json");
const CHATWOOT_MESSAGES: [&str; 3] = [
    include_str!("../../ingest/tests/fixtures/chatwoot/message_created_incoming.json"),
    include_str!("../../ingest/tests/fixtures/chatwoot/message_created_outgoing_bot.json"),
    include_str!("../../ingest/tests/fixtures/chatwoot/message_created_outgoing_agent.json"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Provider {
    Whatsapp,
    Chatwoot,
}

/// One kind of payload, and how its distinct copies are made.
struct Shape {
    /// The figure's name.
    name: &'static str,
    /// What one payload holds, as the provider sends it.
    holds: &'static str,
    provider: Provider,
    /// Fixture bodies, used in turn.
    templates: Vec<Value>,
}

/// One signed webhook delivery, encoded before any clock starts: what the provider
/// sends, so signing is the provider's cost, not the route's.
struct Delivery {
    body: Bytes,
    headers: Vec<(&'static str, String)>,
}

/// What a set of deliveries came to.
struct Delivered {
    /// Events newly stored, as the answers count them.
    accepted: u64,
    /// Events already stored (redeliveries).
    duplicates: u64,
    /// Items dead-lettered: must stay 0, every payload maps in full.
    dead_lettered: u64,
    /// Wall time of the whole set.
    seconds: f64,
    /// Each request, sent to answered.
    latency_us: Histogram<u64>,
}

impl Delivered {
    fn new() -> anyhow::Result<Self> {
        Ok(Self {
            accepted: 0,
            duplicates: 0,
            dead_lettered: 0,
            seconds: 0.0,
            latency_us: Histogram::new(3)?,
        })
    }

    /// Counts one route answer (`{"accepted", "duplicates", "dead_lettered", ..}`).
    fn count(&mut self, answer: &Value) {
        let field = |key: &str| answer[key].as_u64().unwrap_or(0);
        self.accepted += field("accepted");
        self.duplicates += field("duplicates");
        self.dead_lettered += field("dead_lettered");
    }

    fn add(&mut self, other: Self) -> anyhow::Result<()> {
        self.accepted += other.accepted;
        self.duplicates += other.duplicates;
        self.dead_lettered += other.dead_lettered;
        self.latency_us.add(other.latency_us)?;
        Ok(())
    }
}

/// Runs every shape and prints its figures.
pub fn run(args: &SourcesArgs, config: &Config, clock: Clock) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.payloads > 0 && args.senders > 0,
        "--payloads and --senders must be at least 1"
    );
    // The counters the routes increment cost what they cost in `crmpulse run`.
    let _ = query_api::install_metrics();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    println!(
        "crmpulse-bench sources on {} cores (a multi-thread runtime, a worker per core): {}, signatures verified, fsync on, a fresh event log per route run, {} distinct payloads per run",
        num_cores(),
        if args.loopback {
            "HTTP/1.1 over loopback TCP (reqwest → axum::serve)"
        } else {
            "in-process (tower oneshot on the router, no socket)"
        },
        args.payloads,
    );
    for shape in shapes()? {
        measure(&shape, args, config, clock, &runtime)?;
    }
    Ok(())
}

fn shapes() -> anyhow::Result<Vec<Shape>> {
    let parse = |text: &str| serde_json::from_str::<Value>(text).context("a fixture body");
    Ok(vec![
        Shape {
            name: "whatsapp statuses",
            holds: "1 entry, 5 statuses of 2 messages",
            provider: Provider::Whatsapp,
            templates: vec![parse(STATUSES_LIFECYCLE)?],
        },
        Shape {
            name: "whatsapp messages",
            holds: "2 entries, 7 messages (1 reaction)",
            provider: Provider::Whatsapp,
            templates: vec![parse(MESSAGES_MIXED_BATCH)?],
        },
        Shape {
            name: "whatsapp 1 message",
            holds: "1 entry, 1 text",
            provider: Provider::Whatsapp,
            templates: vec![parse(MESSAGES_TEXT)?],
        },
        Shape {
            name: "chatwoot message_created",
            holds: "incoming, bot, agent in turn",
            provider: Provider::Chatwoot,
            templates: CHATWOOT_MESSAGES
                .iter()
                .map(|t| parse(t))
                .collect::<anyhow::Result<_>>()?,
        },
    ])
}

/// The four figures of one shape.
fn measure(
    shape: &Shape,
    args: &SourcesArgs,
    config: &Config,
    clock: Clock,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<()> {
    let timestamp = (clock.now_ms() / 1000).to_string();
    let deliveries = (0..args.payloads)
        .map(|n| shape.delivery(n, &timestamp))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let per_payload = shape.events_of(&deliveries[0].body);
    anyhow::ensure!(per_payload > 0, "{}: maps to no event", shape.name);
    let bytes = deliveries.iter().map(|d| d.body.len()).sum::<usize>() / deliveries.len();
    println!(
        "{}: {}; {bytes} B → {per_payload} event{} per payload",
        shape.name,
        shape.holds,
        if per_payload == 1 { "" } else { "s" }
    );

    // Mapping alone: every body in turn, for at least a second.
    let started = Instant::now();
    let mut mapped = 0u64;
    let mut passes = 0u64;
    while passes == 0 || started.elapsed().as_secs_f64() < 1.0 {
        for d in &deliveries {
            let events = shape.events_of(&d.body);
            anyhow::ensure!(
                events == per_payload,
                "{}: a payload maps to {events} events, not {per_payload}",
                shape.name
            );
            mapped += 1;
        }
        passes += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "  {:<36} {:>7.0} payloads/s {:>8.0} events/s",
        "map only, 1 thread",
        mapped as f64 / seconds,
        (mapped * per_payload) as f64 / seconds,
    );

    let deliveries = Arc::new(deliveries);
    let expected = args.payloads as u64 * per_payload;
    let mut senders = vec![1];
    if args.senders > 1 {
        senders.push(args.senders);
    }
    for (i, &n) in senders.iter().enumerate() {
        let dir = crate::harness::tempdir_under(args.data_dir.as_deref())?;
        let log = Arc::new(
            EventLog::open_with(dir.path(), config.pipeline.log_options(clock))
                .context("opening the benchmark's event log")?,
        );
        let stored = runtime.block_on(deliver(
            shape,
            Arc::clone(&log),
            Arc::clone(&deliveries),
            n,
            args.loopback,
        ))?;
        anyhow::ensure!(
            stored.accepted == expected
                && stored.duplicates == 0
                && stored.dead_lettered == 0
                && log.len() == expected,
            "{}: {} accepted, {} duplicates, {} dead-lettered, {} in the log; {expected} events sent",
            shape.name,
            stored.accepted,
            stored.duplicates,
            stored.dead_lettered,
            log.len()
        );
        print_route(
            &format!("route → log, {}", senders_label(n)),
            &stored,
            args.payloads,
        );
        // The redelivery on the concurrent run's log: every event is a duplicate.
        if i + 1 == senders.len() {
            let again = runtime.block_on(deliver(
                shape,
                Arc::clone(&log),
                Arc::clone(&deliveries),
                n,
                args.loopback,
            ))?;
            anyhow::ensure!(
                again.accepted == 0
                    && again.duplicates == expected
                    && again.dead_lettered == 0
                    && log.len() == expected,
                "{}: the redelivery stored {} events ({} duplicates of {expected}, {} in the log)",
                shape.name,
                again.accepted,
                again.duplicates,
                log.len()
            );
            print_route(
                &format!("redelivered (duplicates), {}", senders_label(n)),
                &again,
                args.payloads,
            );
        }
        anyhow::ensure!(
            log.dead_letters()?.is_empty(),
            "{}: dead letters in the log",
            shape.name
        );
    }
    Ok(())
}

fn senders_label(n: usize) -> String {
    if n == 1 {
        "1 sender".into()
    } else {
        format!("{n} senders")
    }
}

fn print_route(what: &str, d: &Delivered, payloads: usize) {
    println!(
        "  {what:<36} {:>7.0} payloads/s {:>8.0} events/s, p50 {:.2} ms, p99 {:.2} ms",
        payloads as f64 / d.seconds,
        (d.accepted + d.duplicates) as f64 / d.seconds,
        d.latency_us.value_at_quantile(0.5) as f64 / 1000.0,
        d.latency_us.value_at_quantile(0.99) as f64 / 1000.0,
    );
}

impl Shape {
    /// Events `body` maps to; an unmapped item is a broken benchmark, and counts as
    /// no event at all.
    fn events_of(&self, body: &[u8]) -> u64 {
        let mapped = match self.provider {
            Provider::Whatsapp => whatsapp::map(WHATSAPP_ACCOUNT, &[PHONE.to_owned()], body),
            Provider::Chatwoot => chatwoot::map(CHATWOOT_ACCOUNT, body),
        };
        if mapped.unmapped.is_empty() {
            std::hint::black_box(&mapped.events).len() as u64
        } else {
            0
        }
    }

    /// The `n`th payload: its own ids, signed as the provider signs it.
    fn delivery(&self, n: usize, timestamp: &str) -> anyhow::Result<Delivery> {
        let mut body = self.templates[n % self.templates.len()].clone();
        let (body, headers) = match self.provider {
            Provider::Whatsapp => {
                distinct_wamids(&mut body, n);
                let body = serde_json::to_vec(&body)?;
                let signature = ingest::auth::sign(WHATSAPP_SECRET, &body);
                (body, vec![("x-hub-signature-256", signature)])
            }
            Provider::Chatwoot => {
                let id = CHATWOOT_FIRST_ID + n as u64;
                body["id"] = id.into();
                // The conversation's copy of its last message is the same message.
                if let Some(messages) = body
                    .pointer_mut("/conversation/messages")
                    .and_then(Value::as_array_mut)
                {
                    for m in messages {
                        m["id"] = id.into();
                    }
                }
                let body = serde_json::to_vec(&body)?;
                let signature = chatwoot::sign(CHATWOOT_SECRET, timestamp, &body);
                (
                    body,
                    vec![
                        (chatwoot::TIMESTAMP_HEADER, timestamp.to_owned()),
                        (chatwoot::SIGNATURE_HEADER, signature),
                    ],
                )
            }
        };
        Ok(Delivery {
            body: body.into(),
            headers,
        })
    }

    fn uri(&self) -> String {
        match self.provider {
            Provider::Whatsapp => format!("/api/v1/sources/whatsapp/{WHATSAPP_ACCOUNT}"),
            Provider::Chatwoot => {
                format!("/api/v1/sources/chatwoot/{CHATWOOT_ACCOUNT}?token={CHATWOOT_TOKEN}")
            }
        }
    }
}

/// Gives payload `n` its own wamids: the `k`th distinct id of the body ends in
/// `n` and `k` instead, at the same length. A message's statuses keep sharing its
/// wamid, so the event ids (`wa-status-<wamid>-<status>`, `wa-msg-<wamid>`) are new
/// for every payload and the same within one, as Meta's would be.
fn distinct_wamids(body: &mut Value, n: usize) {
    let mut seen: Vec<String> = Vec::new();
    let Some(entries) = body.get_mut("entry").and_then(Value::as_array_mut) else {
        return;
    };
    for entry in entries {
        let Some(changes) = entry.get_mut("changes").and_then(Value::as_array_mut) else {
            continue;
        };
        for change in changes {
            for key in ["messages", "statuses"] {
                let Some(items) = change
                    .get_mut("value")
                    .and_then(|v| v.get_mut(key))
                    .and_then(Value::as_array_mut)
                else {
                    continue;
                };
                for item in items {
                    let Some(id) = item.get("id").and_then(Value::as_str) else {
                        continue;
                    };
                    let k = match seen.iter().position(|s| s == id) {
                        Some(k) => k,
                        None => {
                            seen.push(id.to_owned());
                            seen.len() - 1
                        }
                    };
                    let keep = id.get(..id.len().saturating_sub(12)).unwrap_or(id);
                    item["id"] = format!("{keep}{n:010}{k:02}").into();
                }
            }
        }
    }
}

/// How deliveries reach the routes.
#[derive(Clone)]
enum Transport {
    InProcess(Router),
    Loopback {
        client: reqwest::Client,
        base: String,
    },
}

impl Transport {
    /// The answer's status and body.
    async fn send(&self, uri: &str, d: &Delivery) -> anyhow::Result<(u16, Bytes)> {
        match self {
            Transport::InProcess(app) => {
                let mut request =
                    Request::post(uri).header(header::CONTENT_TYPE, "application/json");
                for (name, value) in &d.headers {
                    request = request.header(*name, value.as_str());
                }
                let response = app
                    .clone()
                    .oneshot(request.body(Body::from(d.body.clone()))?)
                    .await?;
                let status = response.status().as_u16();
                Ok((
                    status,
                    axum::body::to_bytes(response.into_body(), 1 << 20).await?,
                ))
            }
            Transport::Loopback { client, base } => {
                let mut request = client
                    .post(format!("{base}{uri}"))
                    .header(header::CONTENT_TYPE, "application/json");
                for (name, value) in &d.headers {
                    request = request.header(*name, value.as_str());
                }
                let response = request.body(d.body.clone()).send().await?;
                let status = response.status().as_u16();
                Ok((status, response.bytes().await?))
            }
        }
    }
}

/// Delivers every payload of `deliveries` once, from `senders` concurrent senders, to
/// the sources' routes over `log`; checks and sums the answers.
async fn deliver(
    shape: &Shape,
    log: Arc<EventLog>,
    deliveries: Arc<Vec<Delivery>>,
    senders: usize,
    loopback: bool,
) -> anyhow::Result<Delivered> {
    let config = SourcesConfig {
        whatsapp: vec![WhatsappSource {
            account_id: WHATSAPP_ACCOUNT,
            app_secret: WHATSAPP_SECRET.into(),
            verify_token: "bench-verify-token".into(),
            phone_number_ids: vec![PHONE.to_owned()],
        }],
        chatwoot: vec![ChatwootSource {
            account_id: CHATWOOT_ACCOUNT,
            token: CHATWOOT_TOKEN.into(),
            webhook_secret: Some(CHATWOOT_SECRET.into()),
        }],
    };
    config.validate().map_err(anyhow::Error::msg)?;
    // The per-account limiter runs as in production, with a quota it never reaches
    // (u32::MAX per second replenishes instantly), so the figure is not the limit's.
    let auth = Arc::new(IngestAuth::new(None, vec![], u32::MAX));
    let app = sources::router(log, Arc::new(config), auth);
    let (transport, server) = if loopback {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
        });
        let client = reqwest::Client::new();
        (Transport::Loopback { client, base }, Some((stop, server)))
    } else {
        (Transport::InProcess(app), None)
    };
    let uri: Arc<str> = shape.uri().into();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..senders)
        .map(|_| {
            let (transport, deliveries, next, uri) = (
                transport.clone(),
                Arc::clone(&deliveries),
                Arc::clone(&next),
                Arc::clone(&uri),
            );
            tokio::spawn(async move {
                let mut delivered = Delivered::new()?;
                while let Some(d) = deliveries.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let sent = Instant::now();
                    let (status, body) = transport.send(&uri, d).await?;
                    delivered
                        .latency_us
                        .record(sent.elapsed().as_micros() as u64)?;
                    anyhow::ensure!(
                        status == 200,
                        "the route answered {status}: {}",
                        String::from_utf8_lossy(&body)
                    );
                    delivered.count(&serde_json::from_slice(&body)?);
                }
                anyhow::Ok(delivered)
            })
        })
        .collect();
    let mut delivered = Delivered::new()?;
    for task in tasks {
        delivered.add(task.await??)?;
    }
    delivered.seconds = started.elapsed().as_secs_f64();
    // The server (and its hold on the log) ends once the client's connections close.
    drop(transport);
    if let Some((stop, server)) = server {
        let _ = stop.send(());
        server.await??;
    }
    Ok(delivered)
}
