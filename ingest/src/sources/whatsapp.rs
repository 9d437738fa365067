//! The WhatsApp Business Platform (Cloud API) webhook.
//!
//! Meta posts `{"object": "whatsapp_business_account", "entry": [{"changes": [{"field":
//! "messages", "value": {...}}]}]}`; a value carries `metadata.phone_number_id`,
//! `contacts`, inbound `messages`, `statuses` of the business's own messages and
//! webhook-level `errors`, several of each per post. The mapping (`docs/sources.md`):
//!
//! - an inbound message → `message_created` (inbound, customer, `whatsapp`), id
//!   `wa-msg-<wamid>`, in the thread `wa-<phone_number_id>-<customer wa_id>`; one with
//!   a click-to-WhatsApp ad `referral` → also `lead_created` with campaign
//!   `ad-<source_id>`;
//! - a status → `message_status` (`sent`, `delivered`, `read`, `failed` with the first
//!   error's code and title), id `wa-status-<wamid>-<status>`, and `message_created`
//!   (outbound, `whatsapp`) at the status's time, id `wa-out-<wamid>-<status>`: Meta
//!   never reports the business's message itself, and the message fold keeps the
//!   earliest creation, so the message counts once, at its first known status,
//!   whichever order the statuses arrive in (or at the CRM's own `message_created`
//!   for the same wamid, when the CRM reports it earlier);
//! - everything else (reactions and system messages, pricing, conversation windows,
//!   other webhook fields, unknown statuses) is counted and not mapped.
//!
//! Ids are derived from the payload alone, so Meta's retries store nothing twice.

use serde_json::Value;
use subtle::ConstantTimeEq;

use super::{Mapped, WhatsappSource, id_of, present, unix_seconds_ms};

/// The source's name in dead letters and metrics.
pub const SOURCE: &str = "whatsapp";

/// Why a verification request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// `hub.mode` is not `subscribe`.
    #[error("hub.mode: expected \"subscribe\"")]
    Mode,
    /// No `hub.challenge` to answer.
    #[error("hub.challenge: missing")]
    Challenge,
    /// `hub.verify_token` is not the account's.
    #[error("hub.verify_token: does not match the account's verify token")]
    Token,
}

/// Meta's verification request (`GET ?hub.mode=subscribe&hub.verify_token=..&
/// hub.challenge=..`): the challenge to echo when the token is the account's.
///
/// # Errors
/// [`VerifyError`] naming the parameter that is wrong.
pub fn verify<'a>(
    source: &WhatsappSource,
    mode: Option<&str>,
    token: Option<&str>,
    challenge: Option<&'a str>,
) -> Result<&'a str, VerifyError> {
    if mode != Some("subscribe") {
        return Err(VerifyError::Mode);
    }
    let expected = source.verify_token.expose().as_bytes();
    if !bool::from(token.unwrap_or_default().as_bytes().ct_eq(expected)) {
        return Err(VerifyError::Token);
    }
    challenge
        .filter(|c| !c.is_empty())
        .ok_or(VerifyError::Challenge)
}

/// Maps one notification body of `account_id`. `phone_number_ids`, when not empty,
/// are the only business numbers the account takes.
pub fn map(account_id: u64, phone_number_ids: &[String], body: &[u8]) -> Mapped {
    let mut out = Mapped::default();
    let Some(root) = out.parse(body) else {
        return out;
    };
    match root.get("object").and_then(Value::as_str) {
        Some("whatsapp_business_account") => {}
        other => {
            out.unmap(
                &root,
                format!(
                    "object: expected \"whatsapp_business_account\", got {}",
                    other.map_or("nothing".to_owned(), |o| format!("{o:?}"))
                ),
                "bad_enum",
            );
            return out;
        }
    }
    let Some(entries) = root.get("entry").and_then(Value::as_array) else {
        out.unmap(&root, "entry: expected an array".into(), "missing_field");
        return out;
    };
    for (e, entry) in entries.iter().enumerate() {
        let Some(changes) = entry.get("changes").and_then(Value::as_array) else {
            out.unmap(
                entry,
                format!("entry[{e}].changes: expected an array"),
                "missing_field",
            );
            continue;
        };
        for (c, change) in changes.iter().enumerate() {
            let path = format!("entry[{e}].changes[{c}]");
            if change.get("field").and_then(Value::as_str) != Some("messages") {
                out.ignored.push("field:other");
                continue;
            }
            map_value(
                account_id,
                phone_number_ids,
                &change["value"],
                &path,
                &mut out,
            );
        }
    }
    out
}

fn map_value(account_id: u64, numbers: &[String], value: &Value, path: &str, out: &mut Mapped) {
    let Some(phone) = id_of(&value["metadata"]["phone_number_id"]) else {
        out.unmap(
            value,
            format!("{path}.value.metadata.phone_number_id: missing"),
            "missing_field",
        );
        return;
    };
    if !numbers.is_empty() && !numbers.contains(&phone) {
        out.unmap(
            value,
            format!(
                "{path}.value.metadata.phone_number_id: {phone} is not a phone number of account {account_id}"
            ),
            "account_mismatch",
        );
        return;
    }
    if let Some(errors) = value.get("errors").and_then(Value::as_array) {
        for error in errors {
            let code = error
                .get("code")
                .and_then(Value::as_i64)
                .unwrap_or_default();
            tracing::warn!(account_id, phone, code, title = ?error.get("title"), "WhatsApp webhook error");
            metrics::counter!("crmpulse_source_provider_errors_total", "source" => SOURCE)
                .increment(1);
            out.ignored.push("error");
        }
    }
    if value.get("contacts").is_some() {
        out.ignored.push("contacts");
    }
    for (i, message) in array(&value["messages"]).iter().enumerate() {
        map_message(
            account_id,
            &phone,
            message,
            &format!("{path}.value.messages[{i}]"),
            out,
        );
    }
    for (i, status) in array(&value["statuses"]).iter().enumerate() {
        map_status(
            account_id,
            &phone,
            status,
            &format!("{path}.value.statuses[{i}]"),
            out,
        );
    }
}

fn array(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], Vec::as_slice)
}

/// The message types Meta documents, as counter labels; `system` messages (a
/// customer changed number) and reactions are not a customer writing.
fn message_kind(t: &str) -> (&'static str, bool) {
    match t {
        "text" => ("message:text", true),
        "image" => ("message:image", true),
        "audio" => ("message:audio", true),
        "video" => ("message:video", true),
        "document" => ("message:document", true),
        "sticker" => ("message:sticker", true),
        "location" => ("message:location", true),
        "contacts" => ("message:contacts", true),
        "interactive" => ("message:interactive", true),
        "button" => ("message:button", true),
        "order" => ("message:order", true),
        "unsupported" | "unknown" => ("message:unsupported", true),
        "reaction" => ("message:reaction", false),
        "system" => ("message:system", false),
        "request_welcome" => ("message:request_welcome", false),
        // A type newer than this code: still a message from the customer.
        _ => ("message:other", true),
    }
}

fn map_message(account_id: u64, phone: &str, m: &Value, path: &str, out: &mut Mapped) {
    let Some(wamid) = id_of(&m["id"]) else {
        out.unmap(m, format!("{path}.id: missing"), "missing_field");
        return;
    };
    let Some(from) = id_of(&m["from"]) else {
        out.unmap(m, format!("{path}.from: missing"), "missing_field");
        return;
    };
    let Some(at) = unix_seconds_ms(&m["timestamp"]) else {
        out.unmap(
            m,
            format!(
                "{path}.timestamp: expected Unix seconds, got {}",
                m["timestamp"]
            ),
            "wrong_type",
        );
        return;
    };
    let (kind, counts) = message_kind(m["type"].as_str().unwrap_or_default());
    if !counts {
        out.ignored.push(kind);
        return;
    }
    out.items.push(kind);
    let occurred_at = schemas::event::format_rfc3339_ms(at);
    let conversation = format!("wa-{phone}-{from}");
    out.push(
        account_id,
        serde_json::json!({
            "event_id": format!("wa-msg-{wamid}"),
            "occurred_at": occurred_at,
            "type": "message_created",
            "message_id": wamid,
            "conversation_id": conversation,
            "direction": "inbound",
            "sender": "customer",
            "channel": "whatsapp",
        }),
        m,
        path,
    );
    if let Some(referral) = present(&m["referral"]) {
        out.items.push("referral");
        let campaign = id_of(&referral["source_id"]).map(|id| format!("ad-{id}"));
        out.push(
            account_id,
            serde_json::json!({
                "event_id": format!("wa-lead-{wamid}"),
                "occurred_at": occurred_at,
                "type": "lead_created",
                "lead_id": format!("wa-{wamid}"),
                "customer_id": format!("wa-{from}"),
                "conversation_id": conversation,
                "campaign_id": campaign,
            }),
            m,
            path,
        );
    }
}

fn map_status(account_id: u64, phone: &str, s: &Value, path: &str, out: &mut Mapped) {
    let Some(wamid) = id_of(&s["id"]) else {
        out.unmap(s, format!("{path}.id: missing"), "missing_field");
        return;
    };
    let status = s["status"].as_str().unwrap_or_default();
    let kind = match status {
        "sent" => "status:sent",
        "delivered" => "status:delivered",
        "read" => "status:read",
        "failed" => "status:failed",
        _ => {
            out.ignored.push("status:other");
            return;
        }
    };
    let Some(at) = unix_seconds_ms(&s["timestamp"]) else {
        out.unmap(
            s,
            format!(
                "{path}.timestamp: expected Unix seconds, got {}",
                s["timestamp"]
            ),
            "wrong_type",
        );
        return;
    };
    let Some(recipient) = id_of(&s["recipient_id"]) else {
        out.unmap(s, format!("{path}.recipient_id: missing"), "missing_field");
        return;
    };
    out.items.push(kind);
    let occurred_at = schemas::event::format_rfc3339_ms(at);
    let error = &s["errors"][0];
    out.push(
        account_id,
        serde_json::json!({
            "event_id": format!("wa-status-{wamid}-{status}"),
            "occurred_at": occurred_at,
            "type": "message_status",
            "message_id": wamid,
            "status": status,
            "error_code": error.get("code").and_then(Value::as_i64),
            "error_title": error.get("title").and_then(Value::as_str),
        }),
        s,
        path,
    );
    out.push(
        account_id,
        serde_json::json!({
            "event_id": format!("wa-out-{wamid}-{status}"),
            "occurred_at": occurred_at,
            "type": "message_created",
            "message_id": wamid,
            "conversation_id": format!("wa-{phone}-{recipient}"),
            "direction": "outbound",
            "sender": "system",
            "channel": "whatsapp",
        }),
        s,
        path,
    );
}
