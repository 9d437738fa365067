//! WhatsApp specifics: delivery statuses, broadcasts and channel health.
//!
//! Statuses follow the Cloud API's webhooks: `sent`, `delivered`, `read`, or `failed`
//! with a real error code. Two quirks are reproduced on purpose because the pipeline
//! must cope with them: `read` without `delivered` (WhatsApp skips `delivered` when both
//! happen at once) and a late `sent` whose event time is after `read`.
//!
//! Broadcasts are sampled: `broadcast_sent` reports the real number of recipients
//! (500–5000) but at most [`MAX_SAMPLED_MESSAGES`] recipients get an actual
//! `message_created`. Channel health's `sent_per_minute` counts every recipient.

use chrono::NaiveDate;
use schemas::event::{Channel, ChannelState, DeliveryStatus, Direction, Payload, Quality, Sender};

use super::dist::{
    DAY_MS, HOUR_MS, MINUTE_MS, chance, exponential, int, lognormal_ms, minutes_between, weighted,
};
use super::{Action, Simulator, broadcast_id, campaign_id, conversation_id, message_id};

/// WhatsApp Cloud API error codes and titles used for `failed` statuses.
pub(super) const ERRORS: [(i64, &str); 6] = [
    (131_026, "Message undeliverable"),
    (131_047, "Re-engagement message"),
    (131_049, "Meta chose not to deliver"),
    (130_472, "User's number is part of an experiment"),
    (131_050, "User stopped marketing messages"),
    (131_056, "Pair rate limit hit"),
];

/// 1-based indexes into [`ERRORS`] (0 means no error).
const UNDELIVERABLE: u8 = 1;
/// Outside the 24-hour customer-service window without a template.
pub(super) const RE_ENGAGEMENT: u8 = 2;
const META_CHOSE_NOT: u8 = 3;
const EXPERIMENT: u8 = 4;
const STOPPED_MARKETING: u8 = 5;
const PAIR_RATE_LIMIT: u8 = 6;

/// Most recipients of one broadcast that get an actual `message_created`.
pub(super) const MAX_SAMPLED_MESSAGES: u64 = 200;

/// Interval of `channel_health` reports.
pub(super) const HEALTH_EVERY_MS: i64 = 5 * MINUTE_MS;

/// Recipients a broadcast sends per second.
const BROADCAST_PER_SECOND: f64 = 25.0;

/// Whose message it is, which sets failure and read behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Traffic {
    /// A reply in a live conversation: the customer is on the phone, reads fast.
    Conversation,
    /// A marketing template: more failures, read hours later or never.
    Broadcast,
}

/// One WhatsApp business number and its health.
pub(super) struct WaNumber {
    /// The `channel_id` of its `channel_health` events.
    channel_id: &'static str,
    /// Current connection state.
    state: ChannelState,
    /// Current quality rating.
    quality: Quality,
    /// End of the current degraded or disconnected episode.
    episode_until: i64,
    /// Messages sent since the last report (broadcast messages count for every
    /// recipient they stand for).
    pub(super) sent: f64,
    /// End of the broadcast being sent on this number, for the queue depth.
    sending_until: i64,
    /// Recipients per millisecond of that broadcast.
    sending_per_ms: f64,
}

/// The account's two numbers: `inbox-whatsapp-1` and `inbox-whatsapp-2`.
pub(super) fn numbers() -> Vec<WaNumber> {
    ["wa-+15550001", "wa-+15550002"]
        .into_iter()
        .map(|channel_id| WaNumber {
            channel_id,
            state: ChannelState::Connected,
            quality: Quality::Green,
            episode_until: 0,
            sent: 0.0,
            sending_until: 0,
            sending_per_ms: 0.0,
        })
        .collect()
}

/// What the simulator remembers about a broadcast.
pub(super) struct BroadcastInfo {
    /// Campaign number.
    pub(super) campaign: u32,
    /// Recipients each sampled message stands for.
    scale: f64,
}

impl Simulator {
    /// Schedules the status webhooks of an outbound WhatsApp message created now, and
    /// returns when it is read, if it is. `forced_error` makes it fail with that error.
    pub(super) fn schedule_statuses(
        &mut self,
        msg: u64,
        traffic: Traffic,
        forced_error: Option<u8>,
    ) -> Option<i64> {
        let broadcast = traffic == Traffic::Broadcast;
        let sent_at = self.now_ms + lognormal_ms(&mut self.rng, 0.7, 0.6).max(50);
        let error = forced_error.or_else(|| self.random_error(traffic));
        if let Some(error) = error {
            // Half the failures are reported after a `sent`, half straight away.
            let mut failed_at = sent_at;
            if chance(&mut self.rng, 0.5) {
                self.status_at(sent_at, msg, DeliveryStatus::Sent, 0);
                failed_at += lognormal_ms(&mut self.rng, 2.0, 0.8).max(1);
            }
            self.status_at(failed_at, msg, DeliveryStatus::Failed, error);
            return None;
        }
        let median = if broadcast { 3.0 } else { 1.2 };
        let mut delivered_at = sent_at + lognormal_ms(&mut self.rng, median, 1.0).max(1);
        // The phone is off or offline: delivery waits until it is back.
        if chance(&mut self.rng, if broadcast { 0.12 } else { 0.03 }) {
            let mean = if broadcast { 6.0 } else { 2.0 } * HOUR_MS as f64;
            delivered_at += exponential(&mut self.rng, mean) as i64;
        }
        if !chance(&mut self.rng, if broadcast { 0.55 } else { 0.92 }) {
            self.status_at(sent_at, msg, DeliveryStatus::Sent, 0);
            self.status_at(delivered_at, msg, DeliveryStatus::Delivered, 0);
            return None;
        }
        let skip_delivered = chance(&mut self.rng, 0.08);
        let read_at = if skip_delivered {
            delivered_at + int(&mut self.rng, 0, 800) as i64
        } else if broadcast {
            delivered_at + lognormal_ms(&mut self.rng, 1800.0, 1.4).min(5 * DAY_MS)
        } else {
            delivered_at + lognormal_ms(&mut self.rng, 15.0, 1.2).max(500)
        };
        let late_sent = chance(&mut self.rng, 0.01);
        if !late_sent {
            self.status_at(sent_at, msg, DeliveryStatus::Sent, 0);
        }
        if !skip_delivered {
            self.status_at(delivered_at, msg, DeliveryStatus::Delivered, 0);
        }
        self.status_at(read_at, msg, DeliveryStatus::Read, 0);
        if late_sent {
            let at = read_at + lognormal_ms(&mut self.rng, 20.0, 1.0).max(1);
            self.status_at(at, msg, DeliveryStatus::Sent, 0);
        }
        Some(read_at)
    }

    /// About 1.5% of conversation replies and 7% of broadcast messages fail; marketing
    /// templates fail for marketing reasons (frequency caps, opt-outs, experiments).
    fn random_error(&mut self, traffic: Traffic) -> Option<u8> {
        match traffic {
            Traffic::Conversation => chance(&mut self.rng, 0.015).then(|| {
                weighted(
                    &mut self.rng,
                    &[(UNDELIVERABLE, 0.7), (PAIR_RATE_LIMIT, 0.3)],
                )
            }),
            Traffic::Broadcast => chance(&mut self.rng, 0.07).then(|| {
                weighted(
                    &mut self.rng,
                    &[
                        (META_CHOSE_NOT, 0.35),
                        (UNDELIVERABLE, 0.25),
                        (STOPPED_MARKETING, 0.20),
                        (EXPERIMENT, 0.12),
                        (PAIR_RATE_LIMIT, 0.08),
                    ],
                )
            }),
        }
    }

    fn status_at(&mut self, at: i64, msg: u64, status: DeliveryStatus, error: u8) {
        self.schedule(at, Action::Status { msg, status, error });
    }

    /// Emits one `message_status`.
    pub(super) fn emit_status(&mut self, msg: u64, status: DeliveryStatus, error: u8) {
        let error = usize::from(error).checked_sub(1).map(|i| ERRORS[i]);
        self.emit(Payload::MessageStatus {
            message_id: message_id(msg),
            status,
            error_code: error.map(|e| e.0),
            error_title: error.map(|e| e.1.to_owned()),
        });
    }

    /// Schedules the day's broadcasts: mid-morning and late afternoon on weekdays, one
    /// late morning on weekends.
    pub(super) fn plan_broadcasts(&mut self, date: NaiveDate, weekend: bool) {
        let hours: &[i64] = if weekend { &[11] } else { &[10, 16] };
        for &h in hours {
            let minute = int(&mut self.rng, 0, 50) as i64;
            let at = self.calendar.at_local(date, h * 60 + minute);
            if at >= self.now_ms {
                self.schedule(at, Action::Broadcast);
            }
        }
    }

    /// Emits `broadcast_sent` and schedules the sampled messages over the send time.
    /// Every three consecutive broadcasts belong to one campaign.
    pub(super) fn start_broadcast(&mut self) {
        let n = self.broadcasts.len() as u32;
        let campaign = n / 3;
        let recipients = int(&mut self.rng, 500, 5000);
        let sampled = recipients.min(MAX_SAMPLED_MESSAGES);
        self.emit(Payload::BroadcastSent {
            broadcast_id: broadcast_id(n),
            campaign_id: Some(campaign_id(campaign)),
            recipients,
        });
        let duration = (recipients as f64 / BROADCAST_PER_SECOND * 1000.0) as i64;
        let now = self.now_ms;
        let number = &mut self.wa_numbers[0];
        number.sending_until = now + duration;
        number.sending_per_ms = recipients as f64 / duration as f64;
        for i in 0..sampled {
            let at = now + ((i as f64 + self.unit()) / sampled as f64 * duration as f64) as i64;
            self.schedule(at, Action::BroadcastMessage { broadcast: n });
        }
        self.broadcasts.push(BroadcastInfo {
            campaign,
            scale: recipients as f64 / sampled as f64,
        });
    }

    /// Creates one sampled broadcast message to an existing customer, in a fresh
    /// conversation thread that is only opened if the customer answers (about 12% of
    /// those who read it, a few minutes after reading).
    pub(super) fn broadcast_message(&mut self, broadcast: u32) {
        let conv = self.new_conversation_number();
        let customer = self.returning_customer();
        let msg = self.new_message_number();
        self.emit(Payload::MessageCreated {
            message_id: message_id(msg),
            conversation_id: conversation_id(conv),
            direction: Direction::Outbound,
            sender: Sender::System,
            agent_id: None,
            channel: Channel::Whatsapp,
            broadcast_id: Some(broadcast_id(broadcast)),
            auto_reply: false,
        });
        self.wa_numbers[0].sent += self.broadcasts[broadcast as usize].scale;
        if let Some(read_at) = self.schedule_statuses(msg, Traffic::Broadcast, None)
            && chance(&mut self.rng, 0.12)
        {
            let at = read_at + lognormal_ms(&mut self.rng, 180.0, 1.0);
            self.schedule(
                at,
                Action::CampaignReply {
                    conv,
                    customer,
                    broadcast,
                },
            );
        }
    }

    /// Emits `channel_health` for every number and schedules the next report.
    ///
    /// Numbers are connected and green most of the time; a degraded episode (yellow,
    /// rarely red) starts in about 0.3% of reports and lasts 15–90 minutes, a
    /// disconnection in 0.05% and lasts 5–20 minutes. The queue holds the rest of a
    /// running broadcast plus a backlog while the number is unhealthy.
    pub(super) fn health_tick(&mut self) {
        let now = self.now_ms;
        // Taken out for the loop, so each number and the random stream can be borrowed
        // together; put back below.
        let mut numbers = std::mem::take(&mut self.wa_numbers);
        for n in &mut numbers {
            if n.state != ChannelState::Connected && now >= n.episode_until {
                n.state = ChannelState::Connected;
                n.quality = Quality::Green;
            }
            if n.state == ChannelState::Connected {
                let r = self.unit();
                if r < 0.003 {
                    let red = chance(&mut self.rng, 0.1);
                    n.state = ChannelState::Degraded;
                    n.quality = if red { Quality::Red } else { Quality::Yellow };
                    n.episode_until = now + minutes_between(&mut self.rng, 15.0, 90.0);
                } else if r < 0.0035 {
                    n.state = ChannelState::Disconnected;
                    n.episode_until = now + minutes_between(&mut self.rng, 5.0, 20.0);
                }
            }
            let base = int(&mut self.rng, 0, 3);
            // While unhealthy, what was handed over to send piles up.
            let backlog = match n.state {
                ChannelState::Connected => 0,
                ChannelState::Degraded => int(&mut self.rng, 20, 200),
                ChannelState::Disconnected => n.sent.round() as u64 + int(&mut self.rng, 50, 500),
            };
            let broadcasting = if now < n.sending_until {
                ((n.sending_until - now) as f64 * n.sending_per_ms) as u64
            } else {
                0
            };
            let sent_per_minute = if n.state == ChannelState::Disconnected {
                0.0
            } else {
                (n.sent / 5.0 * 10.0).round() / 10.0
            };
            n.sent = 0.0;
            self.emit(Payload::ChannelHealth {
                channel_id: n.channel_id.to_owned(),
                state: n.state,
                quality: n.quality,
                queue_depth: base + backlog + broadcasting,
                sent_per_minute,
            });
        }
        self.wa_numbers = numbers;
        self.schedule(now + HEALTH_EVERY_MS, Action::HealthTick);
    }
}
