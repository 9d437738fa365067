//! Chatwoot's webhooks (Settings → Integrations → Webhooks).
//!
//! Chatwoot posts one JSON object per event, `event` naming it. For conversation
//! events the object is the conversation (`id` is its number within the Chatwoot
//! account, `meta.sender` the contact, `meta.assignee` and `meta.team`, `status`,
//! `changed_attributes`); for message events it is the message, with its
//! `conversation`. The mapping (`docs/sources.md`):
//!
//! - `conversation_created` → `conversation_opened`, and `conversation_assigned` to the
//!   bot when it starts `pending` (Chatwoot's "a bot handles it") or assigned to a bot,
//!   to the agent when it starts with an agent assigned;
//! - `conversation_updated` (its `changed_attributes`): a status transition →
//!   `conversation_resolved` (by the bot when it was `pending`, else by the assignee,
//!   else the system), `conversation_escalated` (`pending` → `open`: the bot hands
//!   over), `conversation_reopened` (`resolved` → `open` or `pending`),
//!   `conversation_assigned` to the bot (→ `pending`); a new assignee or team →
//!   `conversation_assigned`;
//! - `conversation_status_changed` is counted, not mapped: Chatwoot sends it without
//!   the previous status, and the same change comes with it in `conversation_updated`;
//! - `message_created` → `message_created`: `incoming` from the customer; `outgoing`
//!   from the agent (`sender.type` `user`), the bot (`agent_bot`,
//!   `captain_assistant`) or the system; `template` (greetings, out-of-office) as an
//!   automatic reply. Private notes and `activity` messages are not messages to the
//!   customer and are not mapped;
//! - `message_updated` of an outgoing message with `content_attributes.external_error`
//!   (or a `status` key) → `message_status`;
//! - `contact_created` and every other event are counted, not mapped.
//!
//! Ids are `cw-<conversation>`, `cw-msg-<message>`, `cw-contact-<id>`,
//! `cw-agent-<id>`, `cw-team-<id>`, `cw-inbox-<id>`; event ids are derived from the
//! payload (the object's id, what changed, and when), so a redelivery stores nothing.

use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::{Mapped, id_of, present};

/// The source's name in dead letters and metrics.
pub const SOURCE: &str = "chatwoot";

/// Chatwoot's signature headers, when the webhook has a secret.
pub const SIGNATURE_HEADER: &str = "x-chatwoot-signature";
/// The timestamp that is signed with the body.
pub const TIMESTAMP_HEADER: &str = "x-chatwoot-timestamp";

/// Checks Chatwoot's webhook signature: `X-Chatwoot-Signature: sha256=<hex>`, the
/// HMAC-SHA256 under the webhook's secret of `<X-Chatwoot-Timestamp>.<raw body>`.
///
/// # Errors
/// `(status, reason label, message)`: `401` when a header is missing, `403` when
/// the signature does not match.
pub fn check_signature(
    headers: &HeaderMap,
    secret: &str,
    body: &[u8],
) -> Result<(), (StatusCode, &'static str, String)> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(signature), Some(timestamp)) = (header(SIGNATURE_HEADER), header(TIMESTAMP_HEADER))
    else {
        return Err((
            StatusCode::UNAUTHORIZED,
            "missing_signature",
            format!(
                "missing signature: the webhook has a secret, so {SIGNATURE_HEADER} and {TIMESTAMP_HEADER} are required"
            ),
        ));
    };
    let signed: [&[u8]; 3] = [timestamp.trim().as_bytes(), b".", body];
    match super::digest_of(signature) {
        Some(d) if crate::auth::hmac_matches(secret.as_bytes(), &signed, &d) => Ok(()),
        _ => Err((
            StatusCode::FORBIDDEN,
            "bad_signature",
            format!("{SIGNATURE_HEADER}: signature does not match the body"),
        )),
    }
}

/// Signs `body` as Chatwoot does, for tests and the benchmark.
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    crate::auth::sign_parts(secret.as_bytes(), &[timestamp.as_bytes(), b".", body])
}

/// A Chatwoot time: Unix seconds (integer or fractional) or an ISO 8601 string, in ms.
fn time_ms(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().and_then(|s| s.checked_mul(1000)).or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite())
                .map(|f| (f * 1000.0).round() as i64)
        }),
        Value::String(s) => chrono::DateTime::parse_from_rfc3339(s.trim())
            .map(|t| t.timestamp_millis())
            .ok()
            .or_else(|| s.trim().parse::<i64>().ok()?.checked_mul(1000)),
        _ => None,
    }
}

/// The crmpulse channel of a Chatwoot inbox type (`Channel::Whatsapp`, ...).
fn channel_of(channel_type: &str) -> Option<&'static str> {
    Some(match channel_type {
        "Channel::Whatsapp" => "whatsapp",
        "Channel::WebWidget" => "webchat",
        "Channel::Email" => "email",
        "Channel::Instagram" => "instagram",
        "Channel::FacebookPage" => "messenger",
        "Channel::Sms" | "Channel::TwilioSms" => "sms",
        _ => return None,
    })
}

/// Maps one webhook body of `account_id`.
pub fn map(account_id: u64, body: &[u8]) -> Mapped {
    let mut out = Mapped::default();
    let root = match out.parse(body) {
        Some(v @ Value::Object(_)) => v,
        Some(_) => {
            out.unmap(
                &Value::String(String::from_utf8_lossy(body).into_owned()),
                "body: expected a JSON object".into(),
                "malformed",
            );
            return out;
        }
        None => return out,
    };
    let mut cx = Cx {
        account_id,
        root: &root,
        out: &mut out,
    };
    match root["event"].as_str().unwrap_or_default() {
        "conversation_created" => cx.conversation_created(),
        // The new status only; the transition comes in `conversation_updated`.
        "conversation_status_changed" => cx.out.ignored.push("conversation_status_changed"),
        "conversation_updated" => cx.conversation_updated(),
        "message_created" => cx.message_created(),
        "message_updated" => cx.message_updated(),
        "contact_created" => cx.out.ignored.push("contact_created"),
        "" => cx.unmap("event: missing".into(), "missing_field"),
        _ => cx.out.ignored.push("event:other"),
    }
    out
}

struct Cx<'a> {
    account_id: u64,
    root: &'a Value,
    out: &'a mut Mapped,
}

impl<'a> Cx<'a> {
    fn unmap(&mut self, reason: String, kind: &'static str) {
        self.out.unmap(self.root, reason, kind);
    }

    fn push(&mut self, fields: Value) {
        let path = self.root["event"].as_str().unwrap_or("event").to_owned();
        self.out.push(self.account_id, fields, self.root, &path);
    }

    /// A required id at `path` (a `/`-separated JSON pointer), or an unmapped item.
    fn id(&mut self, value: &Value, path: &str) -> Option<String> {
        let found = value.pointer(path).and_then(id_of);
        if found.is_none() {
            self.unmap(format!("{}: missing", dotted(path)), "missing_field");
        }
        found
    }

    fn time(&mut self, value: &Value, path: &str) -> Option<i64> {
        let found = value.pointer(path).and_then(time_ms);
        if found.is_none() {
            self.unmap(
                format!(
                    "{}: expected Unix seconds or an ISO 8601 time, got {}",
                    dotted(path),
                    value.pointer(path).unwrap_or(&Value::Null)
                ),
                "wrong_type",
            );
        }
        found
    }

    /// The conversation's crmpulse channel (`channel` of the conversation object).
    fn channel(&mut self, conversation: &Value, path: &str) -> Option<&'static str> {
        let raw = conversation["channel"].as_str().unwrap_or_default();
        let found = channel_of(raw);
        if found.is_none() {
            self.unmap(
                format!(
                    "{path}: Chatwoot inbox type {raw:?} has no crmpulse channel (whatsapp, webchat, email, instagram, messenger, sms)"
                ),
                "bad_enum",
            );
        }
        found
    }

    /// The conversation's assignee: `(agent, team, assigned to a bot)`. `meta.assignee`
    /// is a user or, with `meta.assignee_type` `AgentBot`, a bot.
    fn assignee(conversation: &Value) -> (Option<String>, Option<String>, bool) {
        let meta = &conversation["meta"];
        let assignee = present(&meta["assignee"]);
        let bot = assignee.is_some_and(|a| a["type"].as_str() == Some("agent_bot"))
            || meta["assignee_type"].as_str() == Some("AgentBot");
        let agent = assignee
            .filter(|_| !bot)
            .and_then(|a| id_of(&a["id"]))
            .map(|id| format!("cw-agent-{id}"));
        let team = present(&meta["team"])
            .and_then(|t| id_of(&t["id"]))
            .map(|id| format!("cw-team-{id}"));
        (agent, team, bot)
    }

    fn conversation_created(&mut self) {
        let c = self.root;
        let Some(id) = self.id(c, "/id") else { return };
        let Some(at) = self.time(c, "/created_at") else {
            return;
        };
        let Some(contact) = self.id(c, "/meta/sender/id") else {
            return;
        };
        let Some(inbox) = self.id(c, "/inbox_id") else {
            return;
        };
        let Some(channel) = self.channel(c, "channel") else {
            return;
        };
        self.out.items.push("conversation_created");
        let occurred_at = schemas::event::format_rfc3339_ms(at);
        let conversation = format!("cw-{id}");
        let campaign = present(&c["campaign_id"])
            .or_else(|| present(&c["additional_attributes"]["campaign_id"]))
            .and_then(id_of)
            .map(|id| format!("cw-campaign-{id}"));
        self.push(json!({
            "event_id": format!("cw-open-{id}"),
            "occurred_at": occurred_at,
            "type": "conversation_opened",
            "conversation_id": conversation,
            "customer_id": format!("cw-contact-{contact}"),
            "channel": channel,
            "inbox_id": format!("cw-inbox-{inbox}"),
            "origin": if campaign.is_some() { "campaign" } else { "inbound" },
            "campaign_id": campaign,
        }));
        let (agent, team, bot) = Self::assignee(c);
        if c["status"].as_str() == Some("pending") || bot {
            self.push(json!({
                "event_id": format!("cw-bot-{id}-{at}"),
                "occurred_at": occurred_at,
                "type": "conversation_assigned",
                "conversation_id": conversation,
                "assignee": "bot",
            }));
        }
        if agent.is_some() {
            self.push(json!({
                "event_id": format!("cw-assign-{id}-{at}"),
                "occurred_at": occurred_at,
                "type": "conversation_assigned",
                "conversation_id": conversation,
                "assignee": "agent",
                "agent_id": agent,
                "team_id": team,
            }));
        }
    }

    /// `(previous, current)` of a changed attribute in `changed_attributes`
    /// (`[{"status": {"previous_value": .., "current_value": ..}}]`, or `null`).
    fn changed(&self, attribute: &str) -> Option<(&'a Value, &'a Value)> {
        self.root["changed_attributes"]
            .as_array()?
            .iter()
            .find_map(|c| {
                let change = c.get(attribute)?;
                Some((&change["previous_value"], &change["current_value"]))
            })
    }

    /// When a `conversation_updated` change happened: the `updated_at` it wrote
    /// (`changed_attributes`), else the conversation's `updated_at`. Chatwoot builds
    /// the body when its job runs, so the top-level `updated_at` may be later.
    fn change_time(&mut self) -> Option<i64> {
        if let Some(at) = self.changed("updated_at").and_then(|(_, now)| time_ms(now)) {
            return Some(at);
        }
        self.time(self.root, "/updated_at")
    }

    /// `conversation_updated`: a status transition (`changed_attributes.status`) and
    /// an assignment (`assignee_id` or `team_id`), either or both.
    fn conversation_updated(&mut self) {
        let c = self.root;
        let status = self.changed("status").map(|(p, n)| {
            (
                p.as_str().unwrap_or_default(),
                n.as_str().unwrap_or_default(),
            )
        });
        let assignment = self.changed("assignee_id").is_some() || self.changed("team_id").is_some();
        if status.is_none() && !assignment {
            self.out.ignored.push("conversation_updated:other");
            return;
        }
        let Some(id) = self.id(c, "/id") else { return };
        let Some(at) = self.change_time() else { return };
        let occurred_at = schemas::event::format_rfc3339_ms(at);
        let conversation = format!("cw-{id}");
        let (agent, team, bot) = Self::assignee(c);
        if let Some((previous, current)) = status {
            let fields = match (previous, current) {
                (_, "resolved") => {
                    let (by, agent) = match (previous, &agent) {
                        ("pending", _) => ("bot", None),
                        (_, Some(agent)) => ("agent", Some(agent.clone())),
                        (_, None) => ("system", None),
                    };
                    Some(
                        json!({"type": "conversation_resolved", "resolved_by": by, "agent_id": agent}),
                    )
                }
                ("pending", "open") => {
                    Some(json!({"type": "conversation_escalated", "reason": "handoff"}))
                }
                ("resolved", "open" | "pending") => Some(json!({"type": "conversation_reopened"})),
                (_, "pending") => Some(json!({"type": "conversation_assigned", "assignee": "bot"})),
                _ => None,
            };
            match fields {
                Some(mut fields) => {
                    self.out.items.push("conversation_updated:status");
                    fields["event_id"] = format!("cw-status-{id}-{current}-{at}").into();
                    fields["occurred_at"] = occurred_at.clone().into();
                    fields["conversation_id"] = conversation.clone().into();
                    self.push(fields);
                }
                // open ↔ snoozed: no event in the catalog.
                None => self.out.ignored.push("conversation_updated:status_other"),
            }
        }
        if assignment {
            let fields = match (agent, bot) {
                (Some(agent), _) => {
                    json!({"assignee": "agent", "agent_id": agent, "team_id": team})
                }
                (None, true) => json!({"assignee": "bot"}),
                // Unassigned, or a team without an agent: the catalog has no such event.
                (None, false) => {
                    self.out.ignored.push("conversation_updated:unassigned");
                    return;
                }
            };
            self.out.items.push("conversation_updated:assignment");
            let mut fields = fields;
            fields["event_id"] = format!("cw-assign-{id}-{at}").into();
            fields["occurred_at"] = occurred_at.into();
            fields["type"] = "conversation_assigned".into();
            fields["conversation_id"] = conversation.into();
            self.push(fields);
        }
    }

    fn message_created(&mut self) {
        let m = self.root;
        if m["private"].as_bool() == Some(true) {
            self.out.ignored.push("message:private");
            return;
        }
        let message_type = m["message_type"].as_str().unwrap_or_default();
        let (direction, sender, auto_reply) = match message_type {
            // A contact sender has no `type` key.
            "incoming" => ("inbound", "customer", false),
            "outgoing" => {
                let sender = match m["sender"]["type"].as_str() {
                    Some("user") => "agent",
                    Some("agent_bot" | "captain_assistant") => "bot",
                    _ => "system",
                };
                ("outbound", sender, false)
            }
            "template" => ("outbound", "system", true),
            "activity" => {
                self.out.ignored.push("message:activity");
                return;
            }
            other => {
                self.unmap(
                    format!(
                        "message_type: unknown value {other:?}, expected incoming, outgoing, activity or template"
                    ),
                    "bad_enum",
                );
                return;
            }
        };
        let Some(id) = self.id(m, "/id") else { return };
        let Some(conversation) = self.id(m, "/conversation/id") else {
            return;
        };
        let Some(at) = self.time(m, "/created_at") else {
            return;
        };
        let Some(channel) = self.channel(&m["conversation"], "conversation.channel") else {
            return;
        };
        let agent = (sender == "agent")
            .then(|| id_of(&m["sender"]["id"]))
            .flatten()
            .map(|id| format!("cw-agent-{id}"));
        self.out.items.push(match sender {
            "customer" => "message:incoming",
            "agent" => "message:agent",
            "bot" => "message:bot",
            _ => "message:system",
        });
        self.push(json!({
            "event_id": format!("cw-msg-{id}"),
            "occurred_at": schemas::event::format_rfc3339_ms(at),
            "type": "message_created",
            "message_id": format!("cw-msg-{id}"),
            "conversation_id": format!("cw-{conversation}"),
            "direction": direction,
            "sender": sender,
            "agent_id": agent,
            "channel": channel,
            "auto_reply": auto_reply,
        }));
    }

    /// `message_updated` of an outgoing message. `Message#webhook_data` has no
    /// delivery status, so a failure is read from `content_attributes.external_error`
    /// (Chatwoot stores WhatsApp's as `"<code>: <title>"`); a `status` key, which some
    /// Chatwoot builds add, is used when present. The time is the body's
    /// `updated_at` when present, else the message's `created_at`.
    fn message_updated(&mut self) {
        let m = self.root;
        let error = present(&m["content_attributes"]["external_error"])
            .and_then(Value::as_str)
            .map(str::to_owned);
        let status = match m["status"].as_str() {
            Some(s @ ("sent" | "delivered" | "read" | "failed")) => s,
            _ if error.is_some() => "failed",
            _ => {
                self.out.ignored.push("message_updated:no_status");
                return;
            }
        };
        if m["message_type"].as_str() != Some("outgoing") || m["private"].as_bool() == Some(true) {
            self.out.ignored.push("message_updated:not_outgoing");
            return;
        }
        let Some(id) = self.id(m, "/id") else { return };
        let at = match m.get("updated_at").and_then(time_ms) {
            Some(at) => at,
            None => {
                let Some(at) = self.time(m, "/created_at") else {
                    return;
                };
                at
            }
        };
        self.out.items.push("message_updated");
        let (code, title) = match (status, error.as_deref()) {
            ("failed", Some(e)) => match e.split_once(':') {
                Some((code, title)) if code.trim().parse::<i64>().is_ok() => (
                    code.trim().parse::<i64>().ok(),
                    Some(title.trim().to_owned()),
                ),
                _ => (None, Some(e.trim().to_owned())),
            },
            _ => (None, None),
        };
        self.push(json!({
            "event_id": format!("cw-msg-{id}-{status}"),
            "occurred_at": schemas::event::format_rfc3339_ms(at),
            "type": "message_status",
            "message_id": format!("cw-msg-{id}"),
            "status": status,
            "error_code": code,
            "error_title": title,
        }));
    }
}

/// `/meta/sender/id` as `meta.sender.id`, for messages.
fn dotted(pointer: &str) -> String {
    pointer.trim_start_matches('/').replace('/', ".")
}
