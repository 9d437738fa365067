//! Business impact: leads, tickets resolved, campaign performance, repeat customers,
//! cost per conversation and revenue (definitions in `docs/metrics.md`).

use foldhash::{HashMap, HashMapExt as _};
use std::collections::BTreeMap;

use schemas::event::Channel;
use schemas::metrics::Fact;
use serde::Serialize;

use super::Params;
use super::agent_productivity::presence;
use super::kpi::RangeBody;
use crate::range::Range;
use crate::settings::AccountSettings;
use crate::store::{AccountFacts, NO_ID, Snapshot};

/// A count now and before.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Count {
    /// In the range.
    pub current: i64,
    /// In the previous period.
    pub previous: i64,
}

/// Money in one currency.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Money {
    /// ISO 4217 code.
    pub currency: String,
    /// Minor units: an exact 128-bit sum (amounts are bounded at ingest).
    #[schema(value_type = i64)]
    pub amount_minor: i128,
    /// Deals summed.
    pub deals: i64,
}

/// One campaign.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Campaign {
    /// The campaign.
    pub campaign_id: String,
    /// Recipients of the campaign's broadcasts sent in the range (`null` when no
    /// broadcast of the campaign is known in the range).
    #[schema(value_type = Option<i64>)]
    pub recipients: Option<i128>,
    /// Conversations opened in the range that came from the campaign.
    pub conversations: i64,
    /// Leads created in the range attributed to the campaign.
    pub leads: i64,
    /// Deals won in the range on the campaign's leads.
    pub deals_won: i64,
    /// Their revenue, per currency.
    pub revenue: Vec<Money>,
    /// `leads / recipients`.
    pub conversion: Option<f64>,
}

/// Repeat customers over one range.
#[derive(Debug, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Repeat {
    /// Customers with ≥ 1 conversation opened in the range.
    pub customers: i64,
    /// Of those, with ≥ 2.
    pub repeat: i64,
    /// `repeat / customers`.
    pub rate: Option<f64>,
}

/// Repeat customers now and before.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct RepeatSection {
    /// The figure for the range.
    pub current: Repeat,
    /// The same figure for the previous period.
    pub previous: Repeat,
}

/// Cost per conversation over one range.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Cost {
    /// Active agent hours (online + busy), to 0.01 h.
    pub agent_hours: f64,
    /// `agent_hours × agent_hourly_cost_minor`, rounded.
    pub agent_cost_minor: i64,
    /// Per-conversation channel fees of the conversations opened.
    pub channel_fees_minor: i64,
    /// Conversations opened in the range.
    pub conversations: i64,
    /// `(agent_cost + channel_fees) / conversations`, rounded; `null` without conversations.
    pub per_conversation_minor: Option<i64>,
}

/// Cost per conversation now and before.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct CostSection {
    /// Currency of every amount here.
    pub currency: String,
    /// The figure for the range.
    pub current: Cost,
    /// The same figure for the previous period.
    pub previous: Cost,
}

/// Revenue now and before, per currency.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Revenue {
    /// The figure for the range.
    pub current: Vec<Money>,
    /// The same figure for the previous period.
    pub previous: Vec<Money>,
}

/// The section body.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct BusinessImpact {
    /// Always `business-impact`.
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
    /// Leads created.
    pub leads: Count,
    /// Tickets resolved.
    pub tickets_resolved: Count,
    /// Per campaign, most leads first.
    pub campaigns: Vec<Campaign>,
    /// Repeat customer rate, now and before.
    pub repeat_customers: RepeatSection,
    /// Cost per conversation from the configured cost inputs.
    pub cost_per_conversation: CostSection,
    /// Revenue of deals won, per currency, now and before.
    pub revenue: Revenue,
}

fn count(facts: Option<&AccountFacts>, kind: &str, r: Range) -> i64 {
    facts
        .into_iter()
        .flat_map(|f| f.range_merged(kind, r.from, r.to))
        .map(|(_, n)| n)
        .sum()
}

fn money(sums: BTreeMap<String, (i128, i64)>) -> Vec<Money> {
    sums.into_iter()
        .map(|(currency, (amount_minor, deals))| Money {
            currency,
            amount_minor,
            deals,
        })
        .collect()
}

/// Revenue per currency, and per campaign and currency, of deals won in `r`.
#[allow(clippy::type_complexity)]
fn deals(
    facts: Option<&AccountFacts>,
    r: Range,
) -> (
    BTreeMap<String, (i128, i64)>,
    HashMap<String, BTreeMap<String, (i128, i64)>>,
) {
    let mut total: BTreeMap<String, (i128, i64)> = BTreeMap::new();
    let mut by_campaign: HashMap<String, BTreeMap<String, (i128, i64)>> = HashMap::new();
    for (fact, n) in facts
        .into_iter()
        .flat_map(|f| f.range_merged("deal_won", r.from, r.to))
    {
        if let Fact::DealWon {
            campaign_id,
            amount_minor,
            currency,
            ..
        } = fact
        {
            let t = total.entry(currency.clone()).or_default();
            t.0 += i128::from(*amount_minor) * i128::from(n);
            t.1 += n;
            if let Some(c) = campaign_id {
                let e = super::slot(&mut by_campaign, c)
                    .entry(currency.clone())
                    .or_default();
                e.0 += i128::from(*amount_minor) * i128::from(n);
                e.1 += n;
            }
        }
    }
    (total, by_campaign)
}

pub(crate) fn repeat(facts: Option<&AccountFacts>, r: Range, p: &Params) -> Repeat {
    let (mut customers, mut repeat) = (0i64, 0i64);
    if let Some(facts) = facts {
        let filter = super::IdFilter::new(p, &facts.names);
        // Conversations per customer (ids are dense); `seen` lists each customer once.
        let mut per_customer = vec![0i64; facts.customers.len()];
        let mut present = super::Bits::new(facts.customers.len());
        let mut seen: Vec<u32> = Vec::new();
        facts.customer_conversations.scan(r.from, r.to, |k, n| {
            if filter.wants_conversation(k.channel, k.inbox) {
                if present.insert(k.customer) {
                    seen.push(k.customer);
                }
                per_customer[k.customer as usize] += n;
            }
        });
        customers = seen.len() as i64;
        repeat = seen
            .iter()
            .filter(|c| per_customer[**c as usize] >= 2)
            .count() as i64;
    }
    Repeat {
        customers,
        repeat,
        rate: super::exact::rate(repeat, customers),
    }
}

fn cost(
    facts: Option<&AccountFacts>,
    r: Range,
    p: &Params,
    settings: &AccountSettings,
    now: i64,
) -> Cost {
    let spent = Range {
        from: r.from,
        to: r.to.min(now),
    };
    let active_ms: i64 = presence(facts, spent, now)
        .time
        .values()
        .map(|t| t.online + t.busy)
        .sum();
    let mut conversations = 0;
    let mut fees: i128 = 0;
    if let Some(facts) = facts {
        let filter = super::IdFilter::new(p, &facts.names);
        // The fee per channel, looked up once per channel instead of once per fact.
        let fee: Vec<(Channel, i64)> = Channel::ALL
            .iter()
            .map(|c| {
                let fee = settings
                    .conversation_fee_minor
                    .get(c.as_str())
                    .copied()
                    .unwrap_or(0);
                (*c, fee)
            })
            .collect();
        facts.opened.scan(r.from, r.to, |k, n| {
            if filter.wants_conversation(k.channel, k.inbox) {
                conversations += n;
                let per = fee.iter().find(|(c, _)| *c == k.channel).map_or(0, |f| f.1);
                fees += i128::from(per) * i128::from(n);
            }
        });
    }
    // Exact: cost in minor units × 3,600,000 (ms per hour), rounded once per figure.
    let hour = 3_600_000i128;
    let agent_cost_ms = i128::from(active_ms) * i128::from(settings.agent_hourly_cost_minor);
    let to_i64 = |x: i128| i64::try_from(x).unwrap_or(i64::MAX);
    Cost {
        agent_hours: super::exact::decimal(active_ms.into(), hour, 2).unwrap_or(0.0),
        agent_cost_minor: to_i64(super::exact::div_half_up(agent_cost_ms, hour)),
        channel_fees_minor: to_i64(fees),
        conversations,
        per_conversation_minor: (conversations > 0).then(|| {
            to_i64(super::exact::div_half_up(
                agent_cost_ms + fees * hour,
                i128::from(conversations) * hour,
            ))
        }),
    }
}

/// Recipients of broadcasts sent in `r`, per campaign (from the broadcast fold).
fn broadcast_recipients(facts: Option<&AccountFacts>, r: Range) -> HashMap<String, i128> {
    let mut out: HashMap<String, i128> = HashMap::new();
    for (fact, n) in facts
        .into_iter()
        .flat_map(|f| f.range_merged("broadcast", r.from, r.to))
    {
        if let Fact::Broadcast {
            campaign_id: Some(c),
            recipients,
            ..
        } = fact
        {
            *super::slot(&mut out, c) += i128::from(*recipients) * i128::from(n);
        }
    }
    out
}

fn campaign<'a>(campaigns: &'a mut BTreeMap<String, Campaign>, id: &str) -> &'a mut Campaign {
    campaigns.entry(id.to_owned()).or_insert_with(|| Campaign {
        campaign_id: id.to_owned(),
        recipients: None,
        conversations: 0,
        leads: 0,
        deals_won: 0,
        revenue: Vec::new(),
        conversion: None,
    })
}

/// Computes the section.
pub fn compute(
    snap: &Snapshot,
    p: &Params,
    settings: &AccountSettings,
    range: Range,
) -> BusinessImpact {
    let facts = snap.accounts.get(&p.account_id);
    let previous = range.previous();
    let now = i64::try_from(snap.progress).unwrap_or(i64::MAX);

    let mut campaigns: BTreeMap<String, Campaign> = BTreeMap::new();
    if let Some(facts) = facts {
        let filter = super::IdFilter::new(p, &facts.names);
        let mut opened: HashMap<u32, i64> = HashMap::new();
        facts.opened.scan(range.from, range.to, |k, n| {
            if k.campaign != NO_ID && filter.wants_conversation(k.channel, k.inbox) {
                *opened.entry(k.campaign).or_default() += n;
            }
        });
        for (c, n) in opened {
            campaign(&mut campaigns, facts.names.name(c)).conversations += n;
        }
    }
    for (fact, n) in facts
        .into_iter()
        .flat_map(|f| f.range_merged("lead", range.from, range.to))
    {
        if let Fact::Lead {
            campaign_id: Some(c),
            ..
        } = fact
        {
            campaign(&mut campaigns, c).leads += n;
        }
    }
    for (c, recipients) in broadcast_recipients(facts, range) {
        *campaign(&mut campaigns, &c).recipients.get_or_insert(0) += recipients;
    }
    let (revenue_now, by_campaign) = deals(facts, range);
    for (c, sums) in by_campaign {
        let entry = campaign(&mut campaigns, &c);
        entry.deals_won = sums.values().map(|(_, d)| d).sum();
        entry.revenue = money(sums);
    }
    let mut campaigns: Vec<Campaign> = campaigns
        .into_values()
        .map(|mut c| {
            c.conversion = c
                .recipients
                .filter(|r| *r > 0)
                .and_then(|r| super::exact::decimal(c.leads.into(), r, 4));
            c
        })
        .collect();
    campaigns.sort_by(|a, b| {
        b.leads
            .cmp(&a.leads)
            .then(a.campaign_id.cmp(&b.campaign_id))
    });

    BusinessImpact {
        section: "business-impact",
        account_id: p.account_id,
        timezone: settings.timezone.name().to_owned(),
        range: range.into(),
        previous_range: previous.into(),
        progress: snap.progress,
        leads: Count {
            current: count(facts, "lead", range),
            previous: count(facts, "lead", previous),
        },
        tickets_resolved: Count {
            current: count(facts, "ticket_resolved", range),
            previous: count(facts, "ticket_resolved", previous),
        },
        campaigns,
        repeat_customers: RepeatSection {
            current: repeat(facts, range, p),
            previous: repeat(facts, previous, p),
        },
        cost_per_conversation: CostSection {
            currency: settings.cost_currency.clone(),
            current: cost(facts, range, p, settings, now),
            previous: cost(facts, previous, p, settings, now),
        },
        revenue: Revenue {
            current: money(revenue_now),
            previous: money(deals(facts, previous).0),
        },
    }
}
