//! WhatsApp performance: the delivery funnel of outbound WhatsApp messages created in
//! the range, broadcast success, failures by error code, and channel health now
//! (definitions in `docs/metrics.md`).

use foldhash::{HashMap, HashMapExt as _};
use std::collections::BTreeMap;

use schemas::event::{Channel, DeliveryStatus, format_rfc3339_ms};
use schemas::metrics::Fact;
use serde::Serialize;

use super::Params;
use super::kpi::{Delivery, RangeBody, WhatsappDelivery};
use crate::range::Range;
use crate::settings::AccountSettings;
use crate::store::{AccountFacts, Snapshot};

/// The delivery funnel over one range. Each step counts messages that reached *at
/// least* that status (statuses never move backwards; `read` implies delivered).
#[derive(Debug, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Funnel {
    /// Outbound WhatsApp messages created in the range.
    pub created: i64,
    /// Of those, reached `sent`, `delivered` or `read`.
    pub sent: i64,
    /// Reached `delivered` or `read`.
    pub delivered: i64,
    /// Reached `read`.
    pub read: i64,
    /// Reported `failed` (whatever else they reached).
    pub failed: i64,
    /// Reached any status (a step above, or `failed`): the delivery rate's denominator.
    pub with_status: i64,
    /// `read / delivered`; `null` when nothing was delivered.
    pub read_rate: Option<f64>,
}

/// The funnel now and before.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct FunnelSection {
    /// The figure for the range.
    pub current: Funnel,
    /// The same figure for the previous period.
    pub previous: Funnel,
}

/// One broadcast sent in the range.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct BroadcastRow {
    /// The broadcast.
    pub broadcast_id: String,
    /// Its campaign, when named.
    pub campaign_id: Option<String>,
    /// Event time of its earliest `broadcast_sent` (RFC 3339).
    pub sent_at: String,
    /// Recipients reported by `broadcast_sent`.
    pub recipients: u64,
    /// Its outbound messages known to crmpulse (any creation time).
    pub messages: i64,
    /// Of those, reached `delivered` or `read`.
    pub delivered: i64,
    /// Reached `read`.
    pub read: i64,
    /// Reported `failed`.
    pub failed: i64,
    /// Broadcast success: `delivered / recipients`; `null` with 0 recipients.
    pub success_rate: Option<f64>,
}

/// Broadcasts sent in one range, summed.
#[derive(Debug, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct BroadcastTotals {
    /// Broadcasts sent.
    pub broadcasts: i64,
    /// Their recipients: an exact 128-bit sum (each is bounded at ingest).
    #[schema(value_type = i64)]
    pub recipients: i128,
    /// Their delivered messages.
    pub delivered: i64,
    /// `delivered / recipients`; `null` with 0 recipients.
    pub success_rate: Option<f64>,
}

/// Broadcasts sent in the range, one row each, and totals now and before.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Broadcasts {
    /// Broadcasts sent in the range, latest first.
    pub rows: Vec<BroadcastRow>,
    /// Totals over the range.
    pub current: BroadcastTotals,
    /// Totals over the previous period.
    pub previous: BroadcastTotals,
}

/// Failed messages with one error code.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct FailureRow {
    /// WhatsApp Cloud API error code of the earliest `failed` status; `null` when none was given.
    pub error_code: Option<i64>,
    /// Its title as reported (the latest title seen for the code in the range).
    pub error_title: Option<String>,
    /// What kind of failure it is: `recipient`, `policy`, `rate_limit`, `template`,
    /// `content`, `account`, `platform` or `unknown` (table in docs/metrics.md).
    pub category: &'static str,
    /// Failed messages created in the range with this code.
    pub count: i64,
    /// The same in the previous period.
    pub previous: i64,
}

/// One channel's health now.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ChannelRow {
    /// The channel (a WhatsApp business number).
    pub channel_id: String,
    /// `connected`, `degraded` or `disconnected`.
    pub state: String,
    /// Quality rating: `green`, `yellow` or `red`.
    pub quality: String,
    /// Messages waiting to be sent.
    pub queue_depth: u64,
    /// Messages sent per minute.
    pub sent_per_minute: f64,
    /// Event time of the latest report (RFC 3339).
    pub reported_at: String,
    /// Seconds from that report to `progress` (how stale the figures are).
    pub age_s: i64,
}

/// Channel health now, per channel and summed.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ChannelsNow {
    /// Every channel that ever reported, by id.
    pub channels: Vec<ChannelRow>,
    /// Queue depth summed over channels: an exact 128-bit sum.
    #[schema(value_type = u64)]
    pub queue_depth: u128,
    /// Send rate summed over channels, per minute.
    pub sent_per_minute: f64,
    /// Channels not `connected` or not `green`.
    pub unhealthy: i64,
}

/// The section body.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct WhatsappPerformance {
    /// Always `whatsapp-performance`.
    pub section: &'static str,
    /// The account the numbers belong to.
    pub account_id: u64,
    /// The account's IANA timezone, used for local hours and days.
    pub timezone: String,
    /// The effective range `[from, to)`, bounds on the 15-minute grid.
    pub range: RangeBody,
    /// The previous period: same length, ending where `range` starts.
    pub previous_range: RangeBody,
    /// Pipeline time (ms since epoch) up to which the state is complete.
    pub progress: u64,
    /// The delivery funnel, now and before.
    pub funnel: FunnelSection,
    /// Delivery rate (as in the KPI strip), now and before, with the alert.
    pub delivery: WhatsappDelivery,
    /// Broadcast success.
    pub broadcasts: Broadcasts,
    /// Failed messages by error code, most frequent first.
    pub failures: Vec<FailureRow>,
    /// Channel health, queue depth and send rate now.
    pub channels_now: ChannelsNow,
}

/// The category of a WhatsApp Cloud API error code (see docs/metrics.md).
pub fn error_category(code: Option<i64>) -> &'static str {
    match code {
        Some(131_026 | 131_021 | 131_050 | 131_045) => "recipient",
        Some(131_047 | 131_049 | 130_472 | 368 | 131_031) => "policy",
        Some(4 | 80_007 | 130_429 | 131_048 | 131_056) => "rate_limit",
        Some(132_000..=132_999) => "template",
        Some(100 | 131_008 | 131_009 | 131_051 | 131_052 | 131_053) => "content",
        Some(0 | 3 | 10 | 190 | 200..=299 | 131_005 | 131_042 | 133_000..=133_999) => "account",
        Some(1 | 2 | 131_000 | 131_016) => "platform",
        _ => "unknown",
    }
}

use super::exact::rate;

fn reached(status: Option<DeliveryStatus>, at_least: DeliveryStatus) -> bool {
    let rank = |s: DeliveryStatus| match s {
        DeliveryStatus::Failed => 0,
        DeliveryStatus::Sent => 1,
        DeliveryStatus::Delivered => 2,
        DeliveryStatus::Read => 3,
    };
    status.is_some_and(|s| rank(s) >= rank(at_least))
}

/// Failed messages by error code: code → (title, count).
type Failures = HashMap<Option<i64>, (Option<String>, i64)>;

/// Funnel and failures of messages created in `r`.
fn messages(facts: Option<&AccountFacts>, r: Range, p: &Params) -> (Funnel, Failures) {
    let mut f = Funnel::default();
    let mut failures = Failures::new();
    if !p.wants_channel(Channel::Whatsapp) {
        return (f, failures);
    }
    for (fact, n) in facts
        .into_iter()
        .flat_map(|f| f.range_merged("whatsapp_message", r.from, r.to))
    {
        if let Fact::WhatsappMessage {
            status,
            failed,
            error_code,
            error_title,
            ..
        } = fact
        {
            f.created += n;
            if reached(*status, DeliveryStatus::Sent) {
                f.sent += n;
            }
            if reached(*status, DeliveryStatus::Delivered) {
                f.delivered += n;
            }
            if reached(*status, DeliveryStatus::Read) {
                f.read += n;
            }
            if status.is_some() || *failed {
                f.with_status += n;
            }
            if *failed {
                f.failed += n;
                let e = failures.entry(*error_code).or_default();
                e.1 += n;
                if error_title.is_some() && (e.0.is_none() || e.0 < *error_title) {
                    e.0.clone_from(error_title);
                }
            }
        }
    }
    f.read_rate = rate(f.read, f.delivered);
    (f, failures)
}

fn delivery(f: &Funnel) -> Delivery {
    Delivery {
        delivered: f.delivered,
        with_status: f.with_status,
        rate: rate(f.delivered, f.with_status),
    }
}

/// Per broadcast id: (messages, delivered, read, failed), over all its messages.
fn broadcast_messages(facts: Option<&AccountFacts>) -> HashMap<&str, [i64; 4]> {
    let mut out: HashMap<&str, [i64; 4]> = HashMap::new();
    for (fact, n) in facts
        .into_iter()
        .flat_map(|f| f.now_of("broadcast_message"))
    {
        if let Fact::BroadcastMessage {
            broadcast_id,
            status,
            failed,
            ..
        } = fact
        {
            let e = out.entry(broadcast_id.as_str()).or_default();
            e[0] += n;
            if reached(*status, DeliveryStatus::Delivered) {
                e[1] += n;
            }
            if reached(*status, DeliveryStatus::Read) {
                e[2] += n;
            }
            if *failed {
                e[3] += n;
            }
        }
    }
    out
}

fn broadcasts(
    facts: Option<&AccountFacts>,
    r: Range,
    p: &Params,
    per_broadcast: &HashMap<&str, [i64; 4]>,
) -> (Vec<BroadcastRow>, BroadcastTotals) {
    let mut rows: Vec<(i64, BroadcastRow)> = Vec::new();
    let mut t = BroadcastTotals::default();
    if !p.wants_channel(Channel::Whatsapp) {
        return (Vec::new(), t);
    }
    for (fact, n) in facts
        .into_iter()
        .flat_map(|f| f.range_merged("broadcast", r.from, r.to))
    {
        if let Fact::Broadcast {
            broadcast_id,
            campaign_id,
            sent_at_ms,
            recipients,
            ..
        } = fact
            && n > 0
        {
            let [messages, delivered, read, failed] = per_broadcast
                .get(broadcast_id.as_str())
                .copied()
                .unwrap_or_default();
            t.broadcasts += 1;
            t.recipients += i128::from(*recipients);
            t.delivered += delivered;
            rows.push((
                *sent_at_ms,
                BroadcastRow {
                    broadcast_id: broadcast_id.clone(),
                    campaign_id: campaign_id.clone(),
                    sent_at: format_rfc3339_ms(*sent_at_ms),
                    recipients: *recipients,
                    messages,
                    delivered,
                    read,
                    failed,
                    success_rate: super::exact::decimal(delivered.into(), (*recipients).into(), 4),
                },
            ));
        }
    }
    t.success_rate = super::exact::decimal(t.delivered.into(), t.recipients, 4);
    rows.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.broadcast_id.cmp(&b.1.broadcast_id)));
    (rows.into_iter().map(|(_, r)| r).collect(), t)
}

fn channels_now(facts: Option<&AccountFacts>, progress: i64) -> ChannelsNow {
    // Per channel: its send rate in thousandths (summed exactly), and its row.
    let mut rows: BTreeMap<&str, (i64, ChannelRow)> = BTreeMap::new();
    for (fact, n) in facts.into_iter().flat_map(|f| f.now_of("channel_health")) {
        if let Fact::ChannelHealth {
            channel_id,
            state,
            quality,
            queue_depth,
            sent_per_minute_milli,
            at_ms,
            ..
        } = fact
            && n > 0
        {
            rows.insert(
                channel_id,
                (
                    *sent_per_minute_milli,
                    ChannelRow {
                        channel_id: channel_id.clone(),
                        state: state.as_str().to_owned(),
                        quality: quality.as_str().to_owned(),
                        queue_depth: *queue_depth,
                        sent_per_minute: *sent_per_minute_milli as f64 / 1000.0,
                        reported_at: format_rfc3339_ms(*at_ms),
                        age_s: ((progress - at_ms) / 1000).max(0),
                    },
                ),
            );
        }
    }
    let milli: Vec<i128> = rows.values().map(|(m, _)| i128::from(*m)).collect();
    let channels: Vec<ChannelRow> = rows.into_values().map(|(_, row)| row).collect();
    ChannelsNow {
        queue_depth: channels.iter().map(|c| u128::from(c.queue_depth)).sum(),
        sent_per_minute: milli.iter().sum::<i128>() as f64 / 1000.0,
        unhealthy: channels
            .iter()
            .filter(|c| c.state != "connected" || c.quality != "green")
            .count() as i64,
        channels,
    }
}

/// Computes the section.
pub fn compute(
    snap: &Snapshot,
    p: &Params,
    settings: &AccountSettings,
    range: Range,
) -> WhatsappPerformance {
    let facts = snap.accounts.get(&p.account_id);
    let previous = range.previous();
    let progress = i64::try_from(snap.progress).unwrap_or(i64::MAX);

    let (funnel_now, failures_now) = messages(facts, range, p);
    let (funnel_before, failures_before) = messages(facts, previous, p);

    let mut codes: BTreeMap<Option<i64>, FailureRow> = BTreeMap::new();
    for (code, (title, count)) in failures_now {
        codes.insert(
            code,
            FailureRow {
                error_code: code,
                error_title: title,
                category: error_category(code),
                count,
                previous: 0,
            },
        );
    }
    for (code, (title, count)) in failures_before {
        codes
            .entry(code)
            .or_insert_with(|| FailureRow {
                error_code: code,
                error_title: title,
                category: error_category(code),
                count: 0,
                previous: 0,
            })
            .previous = count;
    }
    let mut failures: Vec<FailureRow> = codes.into_values().collect();
    failures.sort_by(|a, b| b.count.cmp(&a.count).then(b.previous.cmp(&a.previous)));

    let per_broadcast = broadcast_messages(facts);
    let (rows, totals_now) = broadcasts(facts, range, p, &per_broadcast);
    let (_, totals_before) = broadcasts(facts, previous, p, &per_broadcast);

    let current_delivery = delivery(&funnel_now);
    let alert = current_delivery
        .rate
        .is_some_and(|r| r < settings.whatsapp_delivery_alert_below);

    WhatsappPerformance {
        section: "whatsapp-performance",
        account_id: p.account_id,
        timezone: settings.timezone.name().to_owned(),
        range: range.into(),
        previous_range: previous.into(),
        progress: snap.progress,
        delivery: WhatsappDelivery {
            current: current_delivery,
            previous: delivery(&funnel_before),
            alert_below: settings.whatsapp_delivery_alert_below,
            alert,
        },
        funnel: FunnelSection {
            current: funnel_now,
            previous: funnel_before,
        },
        broadcasts: Broadcasts {
            rows,
            current: totals_now,
            previous: totals_before,
        },
        failures,
        channels_now: channels_now(facts, progress),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_cover_the_codes_the_simulator_and_meta_send() {
        assert_eq!(error_category(Some(131_026)), "recipient");
        assert_eq!(error_category(Some(131_047)), "policy");
        assert_eq!(error_category(Some(131_056)), "rate_limit");
        assert_eq!(error_category(Some(132_001)), "template");
        assert_eq!(error_category(Some(131_053)), "content");
        assert_eq!(error_category(Some(190)), "account");
        assert_eq!(error_category(Some(131_000)), "platform");
        assert_eq!(error_category(Some(42)), "unknown");
        assert_eq!(error_category(None), "unknown");
    }
}
