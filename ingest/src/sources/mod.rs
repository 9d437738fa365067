//! Webhook sources: providers' own payloads in, native [`Event`]s out.
//!
//! A source turns one provider webhook (the WhatsApp Business Cloud API's, Chatwoot's)
//! into native events with the event ids derived from the payload, so a provider's
//! retries and duplicated deliveries store nothing twice. It never fails a whole
//! payload because of one item. Whatever it cannot map is dead-lettered with its text
//! and a reason naming the field, and what it does not map on purpose (a contact, a
//! pricing detail, a message type crmpulse has no use for) is counted per kind. The
//! set-up, the field-by-field mapping and what is dropped are in `docs/sources.md`.
//!
//! The mapping is pure ([`whatsapp::map`], [`chatwoot::map`]). [`router`] authenticates
//! the provider, maps, writes through a [`Store`] (the embedded log or the Kafka
//! events topic, the same code for both) and answers only after the write is durable.

pub mod chatwoot;
mod http;
pub mod whatsapp;

use std::future::Future;

use schemas::{Event, Secret};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use http::router;

/// The `[sources]` section: which accounts take which providers' webhooks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourcesConfig {
    /// `[[sources.whatsapp]]`: one per account connected to a WhatsApp Business app.
    #[serde(default)]
    pub whatsapp: Vec<WhatsappSource>,
    /// `[[sources.chatwoot]]`: one per account connected to a Chatwoot account.
    #[serde(default)]
    pub chatwoot: Vec<ChatwootSource>,
}

impl SourcesConfig {
    /// The WhatsApp source of `account_id`.
    pub fn whatsapp(&self, account_id: u64) -> Option<&WhatsappSource> {
        self.whatsapp.iter().find(|s| s.account_id == account_id)
    }

    /// The Chatwoot source of `account_id`.
    pub fn chatwoot(&self, account_id: u64) -> Option<&ChatwootSource> {
        self.chatwoot.iter().find(|s| s.account_id == account_id)
    }

    /// Refuses a configuration that could not work: an account listed twice for one
    /// provider, an empty secret, a phone number id routed to two accounts.
    ///
    /// # Errors
    /// A message naming the entry.
    pub fn validate(&self) -> Result<(), String> {
        let mut seen = std::collections::BTreeSet::new();
        let mut numbers = std::collections::BTreeMap::new();
        for s in &self.whatsapp {
            if !seen.insert(s.account_id) {
                return Err(format!(
                    "[[sources.whatsapp]]: account {} is listed twice",
                    s.account_id
                ));
            }
            if s.app_secret.is_empty() || s.verify_token.is_empty() {
                return Err(format!(
                    "[[sources.whatsapp]] account {}: app_secret and verify_token must not be empty",
                    s.account_id
                ));
            }
            for n in &s.phone_number_ids {
                if let Some(other) = numbers.insert(n.clone(), s.account_id) {
                    return Err(format!(
                        "[[sources.whatsapp]]: phone_number_id {n} is routed to accounts {other} and {}",
                        s.account_id
                    ));
                }
            }
        }
        seen.clear();
        for s in &self.chatwoot {
            if !seen.insert(s.account_id) {
                return Err(format!(
                    "[[sources.chatwoot]]: account {} is listed twice",
                    s.account_id
                ));
            }
            if s.token.expose().len() < 24 {
                return Err(format!(
                    "[[sources.chatwoot]] account {}: token must be at least 24 characters",
                    s.account_id
                ));
            }
        }
        Ok(())
    }
}

/// One account's WhatsApp Business Cloud API webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhatsappSource {
    /// The crmpulse account the webhook writes to.
    pub account_id: u64,
    /// The Meta app's secret: `X-Hub-Signature-256` is its HMAC-SHA256 of the body.
    pub app_secret: Secret,
    /// The verify token typed into the app's webhook settings (`hub.verify_token`).
    pub verify_token: Secret,
    /// The business phone numbers (`metadata.phone_number_id`) of this account. A
    /// change for another number is dead-lettered; empty accepts every number.
    #[serde(default)]
    pub phone_number_ids: Vec<String>,
}

/// One account's Chatwoot webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatwootSource {
    /// The crmpulse account the webhook writes to.
    pub account_id: u64,
    /// The token in the webhook URL (`?token=`), at least 24 characters: Chatwoot
    /// sends no credentials of its own unless a webhook secret is set.
    pub token: Secret,
    /// The webhook's secret when one is set in Chatwoot: then its signature header
    /// must match as well.
    #[serde(default)]
    pub webhook_secret: Option<Secret>,
}

/// One provider item that could not be mapped.
#[derive(Debug, Clone, PartialEq)]
pub struct Unmapped {
    /// The item's JSON text (or the whole body when it is unreadable).
    pub raw: String,
    /// `path: problem`, e.g. `entry[0].changes[0].value.statuses[1].timestamp: ...`.
    pub reason: String,
    /// The reason's kind, for the rejection counter.
    pub kind: &'static str,
}

/// What one webhook payload maps to.
#[derive(Debug, Default, PartialEq)]
pub struct Mapped {
    /// Native events, validated as any ingested event.
    pub events: Vec<Event>,
    /// Items that could not be mapped, for the dead-letter path.
    pub unmapped: Vec<Unmapped>,
    /// Items read and deliberately not mapped, by kind (`contact_created`,
    /// `message:reaction`, ...), for `crmpulse_source_ignored_total`.
    pub ignored: Vec<&'static str>,
    /// Items mapped, by kind (`message:text`, `status:read`, ...), for
    /// `crmpulse_source_items_total`.
    pub items: Vec<&'static str>,
}

impl Mapped {
    /// Adds the native event `fields` (without `account_id`), validated; an event the
    /// validator refuses is unmapped with its reason, `raw` being the provider item.
    fn push(&mut self, account_id: u64, mut fields: Value, raw: &Value, path: &str) {
        fields["account_id"] = account_id.into();
        match Event::from_json_value(&fields) {
            Ok(e) => self.events.push(e),
            Err(e) => self.unmap(
                raw,
                format!("{path}: maps to an invalid event: {e}"),
                e.kind(),
            ),
        }
    }

    /// The body as JSON, or `None` with the whole body dead-lettered as malformed.
    fn parse(&mut self, body: &[u8]) -> Option<Value> {
        serde_json::from_slice(body)
            .map_err(|e| {
                self.unmapped.push(Unmapped {
                    raw: String::from_utf8_lossy(body).into_owned(),
                    reason: format!("body: not valid JSON: {e}"),
                    kind: "malformed",
                });
            })
            .ok()
    }

    fn unmap(&mut self, raw: &Value, reason: String, kind: &'static str) {
        self.unmapped.push(Unmapped {
            raw: raw.to_string(),
            reason,
            kind,
        });
    }
}

/// The digest of a signature header value, `sha256=<hex>` or bare hex (both
/// providers' forms), or `None` when it is not hex.
fn digest_of(value: &str) -> Option<Vec<u8>> {
    let value = value.trim();
    hex::decode(value.strip_prefix("sha256=").unwrap_or(value)).ok()
}

/// What a [`Store`] did with a payload's events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stored {
    /// Events newly stored.
    pub accepted: u64,
    /// Events already stored (the same derived id): a retry, changed nothing.
    pub duplicates: u64,
    /// Items dead-lettered: unmapped ones, and events past the lateness horizon.
    pub dead_lettered: u64,
}

/// Where a source's events go, durably, before the provider is answered: the embedded
/// log, or the Kafka events topic (`crmpulse ingest` and Kafka `run`).
pub trait Store: Clone + Send + Sync + 'static {
    /// Writes `events` and dead-letters `unmapped`; `source` names the provider in
    /// dead letters.
    fn store(
        &self,
        source: &'static str,
        events: Vec<Event>,
        unmapped: Vec<Unmapped>,
    ) -> impl Future<Output = Result<Stored, String>> + Send;
}

/// Milliseconds since the epoch of a provider's Unix-seconds timestamp, given as a
/// string (`"1795510800"`, WhatsApp) or a number (Chatwoot).
fn unix_seconds_ms(v: &Value) -> Option<i64> {
    let seconds = match v {
        Value::String(s) => s.trim().parse::<i64>().ok()?,
        Value::Number(n) => n.as_i64()?,
        _ => return None,
    };
    seconds.checked_mul(1000)
}

/// A string id from a string or integer field (providers mix both).
fn id_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `null` and absent alike.
fn present(v: &Value) -> Option<&Value> {
    (!v.is_null()).then_some(v)
}
