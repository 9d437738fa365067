//! Per-account settings the API needs at query time: timezone, SLA targets, alert
//! thresholds. They are read on every request, so a change applies to the next
//! response without recomputing anything in the pipeline (facts are zone-free).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// Settings of one account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountSettings {
    /// IANA timezone of the account: day and hour boundaries of ranges, "today".
    pub timezone: Tz,
    /// First-response SLA target in seconds: green ≤ target, yellow ≤ 2× target, red beyond.
    pub sla_first_response_s: u32,
    /// WhatsApp delivery rate below which the dashboard raises an alert (0..1).
    pub whatsapp_delivery_alert_below: f64,
    /// Cost of one active agent hour (online or busy), in minor units of `cost_currency`.
    pub agent_hourly_cost_minor: i64,
    /// Fee per conversation by channel name (`whatsapp`, `sms`, …), in minor units of
    /// `cost_currency`; channels not listed cost nothing.
    pub conversation_fee_minor: BTreeMap<String, i64>,
    /// Currency of the cost inputs (ISO 4217).
    pub cost_currency: String,
}

impl Default for AccountSettings {
    fn default() -> Self {
        Self {
            timezone: Tz::UTC,
            sla_first_response_s: 300,
            whatsapp_delivery_alert_below: 0.9,
            agent_hourly_cost_minor: 0,
            conversation_fee_minor: BTreeMap::new(),
            cost_currency: "USD".to_owned(),
        }
    }
}

/// Settings of every account: defaults, and overrides by account id.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountsConfig {
    /// Settings of accounts without an entry in `accounts`.
    pub defaults: AccountSettings,
    /// Per-account settings, keyed by account id (`[accounts.accounts."1"]` in TOML).
    pub accounts: BTreeMap<String, AccountSettings>,
}

/// Shared, replaceable settings.
#[derive(Debug, Clone, Default)]
pub struct Settings(Arc<RwLock<AccountsConfig>>);

impl Settings {
    /// Wraps a configuration.
    pub fn new(config: AccountsConfig) -> Self {
        Self(Arc::new(RwLock::new(config)))
    }

    /// The settings in force for `account_id`.
    pub fn account(&self, account_id: u64) -> AccountSettings {
        let config = self.0.read().unwrap_or_else(|e| e.into_inner());
        config
            .accounts
            .get(&account_id.to_string())
            .unwrap_or(&config.defaults)
            .clone()
    }

    /// Replaces the configuration; the next response uses it.
    pub fn replace(&self, config: AccountsConfig) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = config;
    }
}
