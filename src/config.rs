//! The configuration file (`--config crmpulse.toml`): what the pipeline computes and
//! how the API presents it. Layers: built-in defaults, then the TOML file, then
//! `CRMPULSE__SECTION__KEY` environment variables (e.g. `CRMPULSE__PIPELINE__WORKERS=4`).
//! Every field is documented in `docs/operations.md`.

use std::path::Path;
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
    /// ClickHouse rollups for analysts (off while `url` is empty); see docs/clickhouse.md.
    pub clickhouse: pipeline::sink::clickhouse::ClickHouseConfig,
}

/// `[pipeline]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineSection {
    /// Timely worker threads (one per core is a good start).
    pub workers: usize,
}

impl Default for PipelineSection {
    fn default() -> Self {
        Self { workers: 2 }
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
    Ok(figment.extract()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_values_override_defaults_and_unknown_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[pipeline]\nworkers = 3\n[accounts.accounts.\"7\"]\ntimezone = \"Asia/Kathmandu\"\n",
        )
        .unwrap();
        let c = load(Some(&path)).unwrap();
        assert_eq!(c.pipeline.workers, 3);
        assert_eq!(
            c.accounts.accounts["7"].timezone,
            chrono_tz::Asia::Kathmandu
        );
        assert_eq!(c.accounts.accounts["7"].sla_first_response_s, 300);
        std::fs::write(&path, "[pipeline]\nworkerz = 3\n").unwrap();
        assert!(
            load(Some(&path))
                .unwrap_err()
                .to_string()
                .contains("workerz")
        );
    }
}
