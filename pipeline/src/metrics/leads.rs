//! The lead fold: leads created, and deals won attributed to the lead's campaign.
//!
//! A lead counts once, at its earliest `lead_created`, with that event's campaign.
//! Every distinct `deal_won` on a lead counts (a second deal on the same lead is an
//! upsell), in the bucket it was won, attributed to the lead's campaign; a deal on a
//! lead whose `lead_created` is not known (yet) counts without a campaign until it is.

use schemas::metrics::Fact;
use schemas::time::bucket_of;

use crate::records::{LeadEvent, LeadKind, owned};

/// What a lead's events add up to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeadSummary {
    /// `(created at, campaign)` of the earliest `lead_created`.
    pub created: Option<(i64, Option<String>)>,
    /// `(won at, amount, currency)` per deal.
    pub deals: Vec<(i64, i64, String)>,
}

/// Folds a lead's events (sorted by time).
pub fn fold<'a>(events: impl IntoIterator<Item = &'a LeadEvent>) -> LeadSummary {
    let mut s = LeadSummary::default();
    for ev in events {
        match &ev.kind {
            LeadKind::Created { campaign_id } => {
                if s.created.is_none() {
                    s.created = Some((ev.at, owned(campaign_id.as_ref())));
                }
            }
            LeadKind::Won {
                amount_minor,
                currency,
            } => s
                .deals
                .push((ev.at, *amount_minor, currency.as_str().to_owned())),
        }
    }
    s
}

/// The facts a lead contributes.
pub fn facts(account_id: u64, s: &LeadSummary, out: &mut Vec<Fact>) {
    let campaign = s.created.as_ref().and_then(|(_, c)| c.clone());
    if let Some((at, _)) = &s.created {
        out.push(Fact::Lead {
            account_id,
            bucket: bucket_of(*at),
            campaign_id: campaign.clone(),
        });
    }
    for (at, amount_minor, currency) in &s.deals {
        out.push(Fact::DealWon {
            account_id,
            bucket: bucket_of(*at),
            campaign_id: campaign.clone(),
            amount_minor: *amount_minor,
            currency: currency.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deal_takes_the_campaign_of_its_lead_even_when_it_arrives_first() {
        let mut events = vec![
            LeadEvent {
                at: 9,
                kind: LeadKind::Won {
                    amount_minor: 500,
                    currency: "USD".into(),
                },
            },
            LeadEvent {
                at: 1,
                kind: LeadKind::Created {
                    campaign_id: Some("spring".into()),
                },
            },
        ];
        events.sort();
        let mut out = Vec::new();
        facts(1, &fold(&events), &mut out);
        assert!(out.contains(&Fact::DealWon {
            account_id: 1,
            bucket: 0,
            campaign_id: Some("spring".into()),
            amount_minor: 500,
            currency: "USD".into(),
        }));
    }
}
