//! The configuration file (`--config crmpulse.toml`): what the pipeline computes and
//! how the API presents it. Layers: built-in defaults, then the TOML file, then
//! `CRMPULSE__SECTION__KEY` environment variables (e.g. `CRMPULSE__PIPELINE__WORKERS=4`).
//! Every field is documented in `docs/operations.md` (`[kafka]` in `docs/kafka.md`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use query_api::{AccountsConfig, LiveConfig};
use serde::{Deserialize, Serialize};

/// The whole configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Per-account settings: timezone, SLA target, alert thresholds.
    pub accounts: AccountsConfig,
    /// Dataflow execution.
    pub pipeline: PipelineSection,
    /// Live WebSocket behaviour.
    pub live: LiveSection,
    /// Dashboard API resources.
    pub api: ApiSection,
    /// ClickHouse rollups for analysts (off while `url` is empty); see docs/clickhouse.md.
    pub clickhouse: pipeline::sink::clickhouse::ClickHouseConfig,
    /// Kafka (`run` reads events from and writes metrics to it; `serve`, `ingest`
    /// and `tail-metrics` need it). Absent: `run` uses the embedded event log.
    pub kafka: Option<ingest::kafka::KafkaConfig>,
    /// Who may read the dashboard and write events; see docs/security.md.
    pub auth: AuthSection,
    /// HTTPS served directly (certificate and key files); absent: plain HTTP, for a
    /// TLS-terminating proxy. See docs/security.md.
    pub tls: crate::tls::TlsSection,
    /// Provider webhooks (WhatsApp Cloud API, Chatwoot) per account; see
    /// docs/sources.md.
    pub sources: ingest::sources::SourcesConfig,
    /// Scheduled reports: the SMTP server, sender, retries, history; see
    /// docs/reports.md.
    pub reports: query_api::ReportsConfig,
}

/// A secret from the configuration (`[auth] hs256_secret`, ingest keys, the
/// ClickHouse password): never printed, never logged.
pub use schemas::Secret;

/// An HS256 secret that no longer signs but whose tokens are still accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PreviousKey {
    /// The `kid` of the tokens it signed (empty: tokens without one).
    pub kid: String,
    /// The secret, at least 32 bytes. Never printed.
    pub secret: Secret,
}

/// How dashboard tokens are verified.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// HMAC-SHA256 with `hs256_secret` (or the data dir's generated secret).
    #[default]
    Hs256,
    /// RSA signatures checked against `rs256_public_keys`.
    Rs256,
    /// No authentication at all: only behind a proxy that authenticates.
    Off,
}

/// `[auth]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSection {
    /// `hs256` (default), `rs256` or `off`.
    pub mode: AuthMode,
    /// HS256 signing secret, at least 32 bytes. Empty: `run`/`demo` generate one in
    /// `DATA_DIR/auth/secret.key`; `serve` and `ingest` replicas need it set (shared).
    /// It also derives every account's ingest key and webhook secret.
    pub hs256_secret: Secret,
    /// Key id of `hs256_secret`, named (`kid`) in the header of every token it signs;
    /// empty: none. Give each secret its own id before rotating, so that tokens of
    /// the old and the new secret tell their key apart.
    pub hs256_kid: String,
    /// Earlier HS256 secrets whose tokens are still accepted (not used to sign), each
    /// with the `kid` its tokens carry (empty for tokens without one). Rotating a
    /// configured secret: move it here, set a new `hs256_secret` and `hs256_kid`,
    /// restart; remove it (and restart) to end its tokens.
    pub hs256_previous_keys: Vec<PreviousKey>,
    /// File of revoked users, written by `crmpulse revoke` and re-read by the server
    /// every second. Empty: `DATA_DIR/auth/revocations.json` where the data dir's
    /// secret signs; `serve` replicas share one file (e.g. on a shared volume) to
    /// revoke users on every replica.
    pub revocations_file: Option<PathBuf>,
    /// RS256: PEM files of the public keys tokens may be signed with (several while
    /// rotating keys).
    pub rs256_public_keys: Vec<PathBuf>,
    /// RS256: PEM file of the private key, read only by `crmpulse token`.
    pub rs256_private_key: Option<PathBuf>,
    /// Validity of tokens minted by `crmpulse token` and the demo, in seconds.
    pub token_ttl_s: u64,
    /// Sustained dashboard requests per second per token (REST and live subscribes).
    pub requests_per_s: u32,
    /// Dashboard requests a token may make at once above the sustained rate.
    pub burst: u32,
    /// Live WebSocket connections the server holds at most.
    pub max_live_connections: usize,
    /// Live WebSocket connections one token holds at most.
    pub max_live_connections_per_token: usize,
    /// Ingest requests per second per account.
    pub ingest_requests_per_s: u32,
    /// Configured ingest keys (in addition to the derived ones), each for one account.
    pub ingest_keys: Vec<ingest::auth::IngestKey>,
    /// Browser origins allowed to call the API cross-origin (CORS). Empty: CORS off.
    pub cors_allowed_origins: Vec<String>,
}

impl Default for AuthSection {
    fn default() -> Self {
        let limits = query_api::auth::Limits::default();
        Self {
            mode: AuthMode::default(),
            hs256_secret: Secret::default(),
            hs256_kid: String::new(),
            hs256_previous_keys: Vec::new(),
            revocations_file: None,
            rs256_public_keys: Vec::new(),
            rs256_private_key: None,
            token_ttl_s: 7 * 86_400,
            requests_per_s: limits.requests_per_s,
            burst: limits.burst,
            max_live_connections: limits.max_live_connections,
            max_live_connections_per_token: limits.max_live_connections_per_token,
            ingest_requests_per_s: 1_000,
            ingest_keys: Vec::new(),
            cors_allowed_origins: Vec::new(),
        }
    }
}

impl AuthSection {
    /// The CORS origins as header values.
    ///
    /// # Errors
    /// An origin that is not a valid header value.
    pub fn cors_origins(&self) -> anyhow::Result<Vec<axum::http::HeaderValue>> {
        self.cors_allowed_origins
            .iter()
            .map(|o| {
                axum::http::HeaderValue::from_str(o).map_err(|_| {
                    anyhow::anyhow!("[auth] cors_allowed_origins: {o:?} is not a valid origin")
                })
            })
            .collect()
    }
}

/// `[pipeline]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineSection {
    /// Timely worker threads (one per core is a good start).
    pub workers: usize,
    /// The lateness horizon, hours: an event whose time is more than this before its
    /// account's latest event time is refused to the dead letters (`too_late`), and
    /// ids of events older than that are forgotten. In Kafka mode the watermark is per
    /// account and partition of the events topic (docs/operations.md). Closed
    /// conversations, messages, tickets and broadcasts whose latest event is that far
    /// behind are final: their state leaves the pipeline and later events for them
    /// are refused as `too_late` too (docs/architecture.md, "Finalization"). `0`
    /// admits events of any age, remembers every id and finalizes nothing.
    pub lateness_horizon_hours: u64,
    /// Embedded mode: seconds between checkpoints of the view store and the
    /// pipeline's finalizer (`checkpoint.bin` in the data dir), written when new events
    /// arrived since the last one, after the log has been read to its start contents,
    /// and at shutdown. A restart loads the checkpoint and replays only the live
    /// entities' events (docs/architecture.md, "Checkpoints"). `0` writes none: every
    /// start replays the whole log. Without a lateness horizon there is nothing to
    /// checkpoint.
    pub checkpoint_interval_secs: u64,
    /// New events after which a checkpoint is written before the interval is over (a
    /// backlog, the demo's backfill, sustained high load), but at most every 30 s and
    /// every ten times the last write's duration. It bounds what a crash makes the next
    /// start replay; each checkpoint pauses ingestion while it is captured (0.3–0.4 s at
    /// 90 days of history), which live deltas wait for. Raise it (or `0`: only every
    /// `checkpoint_interval_secs`) to trade replay after a crash for delta latency
    /// under sustained load (docs/operations.md).
    pub checkpoint_catch_up_events: u64,
    /// Publish `crmpulse_pipeline_arranged_updates{operator,worker}`: the updates each
    /// arrangement of the dataflow holds, to see where its memory is. Off by default:
    /// it costs the pipeline's workers 3–4% of their time (docs/operations.md).
    pub arrangement_sizes: bool,
}

impl Default for PipelineSection {
    fn default() -> Self {
        Self {
            workers: 2,
            lateness_horizon_hours: 168,
            checkpoint_interval_secs: 300,
            checkpoint_catch_up_events: crate::checkpoint::CATCH_UP_EVENTS,
            arrangement_sizes: false,
        }
    }
}

impl PipelineSection {
    /// The embedded log's admission rules for this configuration, on `clock`.
    pub fn log_options(&self, clock: schemas::Clock) -> ingest::log::LogOptions {
        let hours = i64::try_from(self.lateness_horizon_hours).unwrap_or(i64::MAX);
        ingest::log::LogOptions {
            lateness_horizon_ms: (hours > 0).then(|| hours.saturating_mul(3_600_000)),
            clock,
        }
    }

    /// How the pipeline runs with this configuration, on `clock` (every mode and the
    /// benchmarks start it from here).
    pub fn runtime(&self, clock: schemas::Clock) -> pipeline::PipelineConfig {
        pipeline::PipelineConfig {
            workers: self.workers,
            clock,
            lateness_horizon_ms: self.log_options(clock).lateness_horizon_ms,
            arrangement_sizes: self.arrangement_sizes,
            ..pipeline::PipelineConfig::default()
        }
    }
}

/// `[live]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LiveSection {
    /// Least milliseconds between two deltas to one client.
    pub coalesce_ms: u64,
    /// A client that does not accept a frame within this many ms is disconnected.
    pub send_timeout_ms: u64,
    /// Most subscriptions per connection.
    pub max_subscriptions: usize,
}

impl Default for LiveSection {
    fn default() -> Self {
        let d = LiveConfig::default();
        Self {
            coalesce_ms: d.coalesce.as_millis() as u64,
            send_timeout_ms: d.send_timeout.as_millis() as u64,
            max_subscriptions: d.max_subscriptions,
        }
    }
}

impl LiveSection {
    /// The API's runtime form.
    pub fn to_live_config(&self) -> LiveConfig {
        LiveConfig {
            coalesce: Duration::from_millis(self.coalesce_ms.max(10)),
            send_timeout: Duration::from_millis(self.send_timeout_ms.max(100)),
            max_subscriptions: self.max_subscriptions,
            ..LiveConfig::default()
        }
    }
}

/// `[api]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSection {
    /// Most MiB of section bodies kept for sharing between requests and live
    /// subscribers of the same view (`query_api::bodies`); 0 turns sharing off.
    pub body_cache_mib: u64,
}

impl Default for ApiSection {
    fn default() -> Self {
        Self {
            body_cache_mib: query_api::bodies::DEFAULT_MAX_BYTES >> 20,
        }
    }
}

impl ApiSection {
    /// The shared body cache this section asks for, `None` at 0 MiB.
    pub fn body_cache(&self) -> Option<std::sync::Arc<query_api::bodies::BodyCache>> {
        (self.body_cache_mib > 0).then(|| {
            std::sync::Arc::new(query_api::bodies::BodyCache::new(
                self.body_cache_mib.saturating_mul(1 << 20),
            ))
        })
    }
}

/// Loads defaults, then `path` (if any), then the environment.
///
/// # Errors
/// A message naming the bad key or file.
pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    if let Some(path) = path {
        anyhow::ensure!(
            path.exists(),
            "config file {} does not exist",
            path.display()
        );
        figment = figment.merge(Toml::file(path));
    }
    figment = figment.merge(Env::prefixed("CRMPULSE__").split("__"));
    let config: Config = figment.extract()?;
    config.sources.validate().map_err(anyhow::Error::msg)?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    // The closure's error type is figment's own, fixed by `Jail::expect_with`.
    #[allow(clippy::result_large_err)]
    fn file_values_override_defaults_and_unknown_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[pipeline]\nworkers = 3\n[accounts.accounts.\"7\"]\ntimezone = \"Asia/Kathmandu\"\n",
        )
        .unwrap();
        // Every test that reads the environment runs inside a Jail: the Jail holds a
        // process-wide lock, so another test's `CRMPULSE__KAFKA__*` variable cannot
        // leak into this one while both run in parallel.
        figment::Jail::expect_with(|_jail| {
            let c = load(Some(&path)).unwrap();
            assert_eq!(c.pipeline.workers, 3);
            assert_eq!(
                c.accounts.accounts["7"].timezone,
                chrono_tz::Asia::Kathmandu
            );
            assert_eq!(c.accounts.accounts["7"].sla_first_response_s, 300);
            assert_eq!(c.kafka, None);
            std::fs::write(&path, "[pipeline]\nworkerz = 3\n").unwrap();
            assert!(
                load(Some(&path))
                    .unwrap_err()
                    .to_string()
                    .contains("workerz")
            );
            Ok(())
        });
    }

    #[test]
    // The closure's error type is figment's own, fixed by `Jail::expect_with`.
    #[allow(clippy::result_large_err)]
    fn the_kafka_section_takes_file_values_then_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[kafka]\nbrokers = \"10.0.0.1:9092\"\n[kafka.topics]\nmetrics = \"m\"\n[kafka.properties]\n\"security.protocol\" = \"SASL_SSL\"\n",
        )
        .unwrap();
        figment::Jail::expect_with(|jail| {
            jail.set_env("CRMPULSE__KAFKA__GROUP_ID", "g2");
            let c = load(Some(&path)).unwrap();
            let k = c.kafka.expect("a [kafka] section");
            assert_eq!(k.brokers, "10.0.0.1:9092");
            assert_eq!(k.group_id, "g2");
            assert_eq!(k.topics.metrics, "m");
            assert_eq!(k.topics.events, "crm.events.v1");
            assert_eq!(k.properties["security.protocol"], "SASL_SSL");
            std::fs::write(&path, "[kafka]\nbrokerz = \"x\"\n").unwrap();
            assert!(
                load(Some(&path))
                    .unwrap_err()
                    .to_string()
                    .contains("brokerz")
            );
            Ok(())
        });
    }

    #[test]
    // The closure's error type is figment's own, fixed by `Jail::expect_with`.
    #[allow(clippy::result_large_err)]
    fn auth_secrets_load_from_file_and_environment_and_never_print() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[auth]\nmode = \"hs256\"\n[[auth.ingest_keys]]\nid = \"crm\"\naccount_id = 3\nkey = \"ingest-key-that-is-long-enough\"\nwebhook_secret = \"webhook-secret-value\"\n",
        )
        .unwrap();
        figment::Jail::expect_with(|jail| {
            jail.set_env(
                "CRMPULSE__AUTH__HS256_SECRET",
                "env-secret-0123456789abcdef0123456789",
            );
            let c = load(Some(&path)).unwrap();
            assert_eq!(
                c.auth.hs256_secret.expose(),
                "env-secret-0123456789abcdef0123456789"
            );
            assert_eq!(c.auth.ingest_keys[0].account_id, 3);
            let printed = format!("{c:?}");
            for secret in ["env-secret", "ingest-key-that", "webhook-secret-value"] {
                assert!(!printed.contains(secret), "{secret} printed: {printed}");
            }
            std::fs::write(&path, "[auth]\nmode = \"none\"\n").unwrap();
            assert!(load(Some(&path)).unwrap_err().to_string().contains("none"));
            Ok(())
        });
    }
}
