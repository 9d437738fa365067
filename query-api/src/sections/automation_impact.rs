//! Automation impact: what the bot does for conversations opened in the range —
//! bot-only vs with humans, escalation, drop-off, auto-reply success, top intents,
//! time saved and CSAT (definitions in `docs/metrics.md`).

use foldhash::HashMap;

use schemas::event::ResolvedBy;
use serde::Serialize;

use super::Params;
use super::kpi::RangeBody;
use crate::range::Range;
use crate::settings::AccountSettings;
use crate::store::{AccountFacts, NO_ID, Snapshot};

/// How many intents `top_intents` lists.
const TOP_INTENTS: usize = 10;

/// A ratio with its parts.
#[derive(Debug, Default, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Rate {
    /// The numerator.
    pub count: i64,
    /// The denominator.
    pub of: i64,
    /// `count / of`, rounded to 4 decimals; `null` when `of` is 0.
    pub rate: Option<f64>,
}

impl Rate {
    fn new(count: i64, of: i64) -> Self {
        Rate {
            count,
            of,
            rate: ratio(count, of),
        }
    }
}

/// A rate now and before.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct RateSection {
    /// The figure for the range.
    pub current: Rate,
    /// The same figure for the previous period.
    pub previous: Rate,
}

/// Conversations opened in one range by who handled them.
#[derive(Debug, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Split {
    /// Conversations opened.
    pub total: i64,
    /// Resolved by the bot (resolution now is by `bot`) without any human agent message.
    pub bot_only: i64,
    /// With at least one human agent message.
    pub with_humans: i64,
    /// Neither yet: open without a human, or closed by the system or an agent without
    /// writing.
    pub other: i64,
    /// `bot_only / total`; `null` without conversations.
    pub bot_only_share: Option<f64>,
}

/// The split now and before.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct SplitSection {
    /// The figure for the range.
    pub current: Split,
    /// The same figure for the previous period.
    pub previous: Split,
}

/// One detected intent.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct IntentRow {
    /// The intent label (the conversation's first detected intent).
    pub intent: String,
    /// Conversations opened in the range with this intent.
    pub conversations: i64,
    /// The same in the previous period.
    pub previous_conversations: i64,
    /// Of `conversations`, bot-only resolutions ÷ conversations.
    pub bot_resolution: Rate,
    /// Escalated ÷ assigned to the bot, among `conversations`.
    pub escalation: Rate,
}

/// Time saved by the bot over one range.
#[derive(Debug, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct TimeSaved {
    /// Bot-only resolutions (conversations opened in the range).
    pub bot_only_resolutions: i64,
    /// Resolved conversations with humans whose handling time was measured.
    pub human_conversations: i64,
    /// Their average handling time in seconds (rounded to 0.1 s); `null` without any.
    pub avg_human_handling_s: Option<f64>,
    /// `bot_only_resolutions × avg_human_handling_s`, whole seconds; `null` without an average.
    pub saved_s: Option<i64>,
}

/// Time saved now and before.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct TimeSavedSection {
    /// The figure for the range.
    pub current: TimeSaved,
    /// The same figure for the previous period.
    pub previous: TimeSaved,
}

/// CSAT of one group of conversations.
#[derive(Debug, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct CsatGroup {
    /// Rated conversations (latest score per conversation).
    pub responses: i64,
    /// Mean score 1..5, rounded to 0.01; `null` without responses.
    pub average: Option<f64>,
    /// Share of scores 4 or 5; `null` without responses.
    pub satisfaction: Option<f64>,
}

/// CSAT for bot-only vs with-humans conversations over one range.
#[derive(Debug, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Csat {
    /// Bot-only conversations.
    pub bot_only: CsatGroup,
    /// Conversations with humans.
    pub with_humans: CsatGroup,
}

/// CSAT now and before.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct CsatSection {
    /// The figure for the range.
    pub current: Csat,
    /// The same figure for the previous period.
    pub previous: Csat,
}

/// The section body.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct AutomationImpact {
    /// Always `automation-impact`.
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
    /// Bot-only vs with-humans conversations.
    pub conversations: SplitSection,
    /// Escalated ÷ assigned to the bot.
    pub escalation: RateSection,
    /// Bot conversations resolved by the system (inactivity) ÷ bot conversations.
    pub drop_off: RateSection,
    /// Conversations with an auto reply resolved without escalation ÷ conversations
    /// with an auto reply.
    pub auto_reply_success: RateSection,
    /// The most frequent intents in the range (at most 10), most conversations first.
    pub top_intents: Vec<IntentRow>,
    /// Bot-only resolutions × average human handling time.
    pub time_saved: TimeSavedSection,
    /// CSAT average and satisfaction, bot-only vs with humans.
    pub csat: CsatSection,
}

use super::exact::{self, rate as ratio};

/// Per-intent counters: conversations, bot-only, bot-assigned, escalated among those.
type IntentCounts = [i64; 4];

#[derive(Default)]
struct Figures<'a> {
    split: Split,
    bot: i64,
    escalated: i64,
    dropped: i64,
    auto_reply: i64,
    auto_reply_ok: i64,
    handling_sum: i64,
    handling_n: i64,
    /// `[responses, score sum, satisfied]` for bot-only and with humans.
    csat: [[i64; 3]; 2],
    /// Keyed by the interned intents' strings.
    intents: HashMap<&'a str, IntentCounts>,
}

fn figures<'a>(facts: Option<&'a AccountFacts>, r: Range, p: &Params) -> Figures<'a> {
    let mut f = Figures::default();
    if let Some(facts) = facts {
        f = figures_of(facts, r, p);
    }
    f.split.other = f.split.total - f.split.bot_only - f.split.with_humans;
    f.split.bot_only_share = ratio(f.split.bot_only, f.split.total);
    f
}

fn figures_of<'a>(facts: &'a AccountFacts, r: Range, p: &Params) -> Figures<'a> {
    let mut f = Figures::default();
    let filter = super::IdFilter::new(p, &facts.names);
    // Per intent id ([`AccountFacts::names`]); `None` for intents not seen.
    let mut intents: Vec<Option<IntentCounts>> = vec![None; facts.names.len()];
    facts.automation.scan(r.from, r.to, |k, n| {
        if !filter.wants_conversation(k.channel, k.inbox) {
            return;
        }
        let bot_only = k.resolved_by == Some(ResolvedBy::Bot) && !k.human;
        f.split.total += n;
        if bot_only {
            f.split.bot_only += n;
        } else if k.human {
            f.split.with_humans += n;
        }
        if k.bot {
            f.bot += n;
            if k.escalated {
                f.escalated += n;
            }
            if k.resolved_by == Some(ResolvedBy::System) {
                f.dropped += n;
            }
        }
        if k.auto_reply {
            f.auto_reply += n;
            if k.resolved_by.is_some() && !k.escalated {
                f.auto_reply_ok += n;
            }
        }
        if let Some(s) = k.handling_s {
            f.handling_sum += i64::from(s) * n;
            f.handling_n += n;
        }
        let group = if bot_only {
            Some(0)
        } else if k.human {
            Some(1)
        } else {
            None
        };
        if let (Some(g), Some(score)) = (group, k.csat) {
            let c = &mut f.csat[g];
            c[0] += n;
            c[1] += i64::from(score) * n;
            if score >= 4 {
                c[2] += n;
            }
        }
        if k.intent != NO_ID {
            let c: &mut IntentCounts = intents[k.intent as usize].get_or_insert_default();
            c[0] += n;
            if bot_only {
                c[1] += n;
            }
            if k.bot {
                c[2] += n;
                if k.escalated {
                    c[3] += n;
                }
            }
        }
    });
    f.intents = intents
        .into_iter()
        .enumerate()
        .filter_map(|(id, c)| Some((facts.names.name(id as u32), c?)))
        .collect();
    f
}

impl Figures<'_> {
    fn time_saved(&self) -> TimeSaved {
        let (sum, n) = (i128::from(self.handling_sum), i128::from(self.handling_n));
        TimeSaved {
            bot_only_resolutions: self.split.bot_only,
            human_conversations: self.handling_n,
            avg_human_handling_s: exact::decimal(sum, n, 1),
            // bot-only × the exact average, rounded once.
            saved_s: (n > 0).then(|| {
                exact::div_half_up(i128::from(self.split.bot_only) * sum, n)
                    .try_into()
                    .unwrap_or(i64::MAX)
            }),
        }
    }

    fn csat(&self) -> Csat {
        let group = |c: [i64; 3]| CsatGroup {
            responses: c[0],
            average: exact::decimal(c[1].into(), c[0].into(), 2),
            satisfaction: ratio(c[2], c[0]),
        };
        Csat {
            bot_only: group(self.csat[0]),
            with_humans: group(self.csat[1]),
        }
    }
}

/// Computes the section.
pub fn compute(
    snap: &Snapshot,
    p: &Params,
    settings: &AccountSettings,
    range: Range,
) -> AutomationImpact {
    let facts = snap.accounts.get(&p.account_id);
    let previous = range.previous();
    let mut now = figures(facts, range, p);
    let before = figures(facts, previous, p);

    let mut intents: Vec<(&str, IntentCounts)> = now.intents.drain().collect();
    intents.sort_by(|a, b| b.1[0].cmp(&a.1[0]).then(a.0.cmp(b.0)));
    let top_intents = intents
        .into_iter()
        .take(TOP_INTENTS)
        .map(|(intent, c)| IntentRow {
            previous_conversations: before.intents.get(intent).map_or(0, |b| b[0]),
            intent: intent.to_owned(),
            conversations: c[0],
            bot_resolution: Rate::new(c[1], c[0]),
            escalation: Rate::new(c[3], c[2]),
        })
        .collect();

    AutomationImpact {
        section: "automation-impact",
        account_id: p.account_id,
        timezone: settings.timezone.name().to_owned(),
        range: range.into(),
        previous_range: previous.into(),
        progress: snap.progress,
        escalation: RateSection {
            current: Rate::new(now.escalated, now.bot),
            previous: Rate::new(before.escalated, before.bot),
        },
        drop_off: RateSection {
            current: Rate::new(now.dropped, now.bot),
            previous: Rate::new(before.dropped, before.bot),
        },
        auto_reply_success: RateSection {
            current: Rate::new(now.auto_reply_ok, now.auto_reply),
            previous: Rate::new(before.auto_reply_ok, before.auto_reply),
        },
        top_intents,
        time_saved: TimeSavedSection {
            current: now.time_saved(),
            previous: before.time_saved(),
        },
        csat: CsatSection {
            current: now.csat(),
            previous: before.csat(),
        },
        conversations: SplitSection {
            current: std::mem::take(&mut now.split),
            previous: before.split,
        },
    }
}
