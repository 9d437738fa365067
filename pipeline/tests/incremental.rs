//! The incremental pipeline equals a batch recomputation of the same events, for any
//! arrival order, any batching, any duplicates and late events, with two workers, and
//! every released batch is the state of a whole prefix of batches (never half of one).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crmpulse_pipeline::{Pipeline, PipelineConfig, reference};
use proptest::prelude::*;
use proptest::sample::select;
use schemas::event::*;
use schemas::metrics::{Fact, MetricBatch};

fn conv() -> impl Strategy<Value = String> {
    select(vec!["c0", "c1", "c2", "c3", "c4"]).prop_map(String::from)
}
fn msg() -> impl Strategy<Value = String> {
    select(vec!["m0", "m1", "m2", "m3", "m4", "m5"]).prop_map(String::from)
}
fn agent() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(select(vec!["a1", "a2"]).prop_map(String::from))
}

fn payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        3 => (conv(), select(Channel::ALL), select(vec!["i1", "i2"]), select(vec!["u1", "u2", "u3"])).prop_map(|(conversation_id, channel, inbox, customer)| {
            Payload::ConversationOpened {
                conversation_id, customer_id: customer.into(), channel, inbox_id: inbox.into(),
                origin: Origin::Inbound, campaign_id: None,
            }
        }),
        2 => (conv(), select(Assignee::ALL), agent(), proptest::option::of(Just("t1".to_string()))).prop_map(
            |(conversation_id, assignee, agent_id, team_id)| Payload::ConversationAssigned { conversation_id, assignee, agent_id, team_id }
        ),
        1 => conv().prop_map(|conversation_id| Payload::ConversationEscalated { conversation_id, reason: None }),
        1 => (conv(), select(ResolvedBy::ALL)).prop_map(|(conversation_id, resolved_by)| {
            Payload::ConversationResolved { conversation_id, resolved_by, agent_id: None }
        }),
        1 => conv().prop_map(|conversation_id| Payload::ConversationReopened { conversation_id }),
        4 => (msg(), conv(), select(Direction::ALL), select(Sender::ALL), agent(), select(vec![Channel::Whatsapp, Channel::Webchat]),
              proptest::option::of(select(vec!["b1", "b2"]).prop_map(String::from)), any::<bool>())
            .prop_map(|(message_id, conversation_id, direction, sender, agent_id, channel, broadcast_id, auto_reply)| Payload::MessageCreated {
                message_id, conversation_id, direction, sender, agent_id, channel, broadcast_id, auto_reply,
            }),
        3 => (msg(), select(DeliveryStatus::ALL), proptest::option::of(select(vec![131_026i64, 131_047]))).prop_map(|(message_id, status, error_code)| Payload::MessageStatus {
            message_id, status, error_code, error_title: error_code.map(|c| format!("error {c}")),
        }),
        1 => (conv(), select(vec!["billing", "refund", "order_status"])).prop_map(|(conversation_id, intent)| Payload::IntentDetected {
            conversation_id, intent: intent.into(), confidence: Some(0.8),
        }),
        1 => (conv(), 1u8..=5).prop_map(|(conversation_id, score)| Payload::CsatSubmitted { conversation_id, score }),
        1 => (select(vec!["b1", "b2"]), proptest::option::of(Just("camp".to_string())), 1u64..5_000).prop_map(|(b, campaign_id, recipients)| {
            Payload::BroadcastSent { broadcast_id: b.into(), campaign_id, recipients }
        }),
        1 => (select(vec!["wa-1", "wa-2"]), select(ChannelState::ALL), select(Quality::ALL), 0u64..500, 0.0f64..100.0).prop_map(
            |(channel_id, state, quality, queue_depth, sent_per_minute)| Payload::ChannelHealth {
                channel_id: channel_id.into(), state, quality, queue_depth, sent_per_minute,
            }
        ),
        1 => (select(vec!["t0", "t1", "t2"]), select(Priority::ALL)).prop_map(|(t, priority)| Payload::TicketOpened {
            ticket_id: t.into(), conversation_id: None, priority,
        }),
        1 => select(vec!["t0", "t1", "t2"]).prop_map(|t| Payload::TicketResolved { ticket_id: t.into() }),
        1 => (select(vec!["l1", "l2"]), proptest::option::of(Just("camp".to_string()))).prop_map(|(lead, campaign_id)| {
            Payload::LeadCreated { lead_id: lead.into(), customer_id: "u1".into(), conversation_id: None, campaign_id }
        }),
        1 => (select(vec!["l1", "l2", "l3"]), 0i64..10_000).prop_map(|(lead, amount_minor)| Payload::DealWon {
            lead_id: lead.into(), amount_minor, currency: "USD".into(),
        }),
        2 => (select(vec!["a1", "a2"]), select(AgentStatus::ALL), proptest::option::of(Just("t1".to_string()))).prop_map(
            |(agent, status, team_id)| Payload::AgentStatusChanged { agent_id: agent.into(), team_id, status }
        ),
    ]
}

/// A stream of events with unique ids, then duplicated and shuffled, cut into batches.
fn scenario() -> impl Strategy<Value = (Vec<Event>, Vec<usize>)> {
    proptest::collection::vec((1u64..=2, 0i64..4_000_000, payload()), 1..60)
        .prop_map(|items| {
            items
                .into_iter()
                .enumerate()
                .map(|(i, (account_id, t, payload))| Event {
                    event_id: format!("e{i}"),
                    account_id,
                    occurred_at_ms: 1_764_000_000_000 + t,
                    payload,
                })
                .collect::<Vec<_>>()
        })
        .prop_flat_map(|events| {
            let n = events.len();
            (Just(events), proptest::collection::vec(0..n, 0..n / 2 + 1))
        })
        .prop_map(|(mut events, dups)| {
            for i in dups {
                events.push(events[i].clone());
            }
            events
        })
        .prop_shuffle()
        .prop_flat_map(|events| {
            let n = events.len();
            (Just(events), proptest::collection::vec(1..=n.max(1), 1..6))
        })
}

fn apply(state: &mut HashMap<Fact, i64>, batch: &MetricBatch) {
    for (fact, diff) in &batch.updates {
        let e = state.entry(fact.clone()).or_default();
        *e += diff;
        if *e == 0 {
            state.remove(fact);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn incremental_equals_batch((events, cuts) in scenario()) {
        check_against_batch(&events, &cuts)?;
    }
}

/// Agent status changes, channel reports and customers' conversations spread over a
/// year, several on some days and at the same instant, so every level of the presence,
/// health and first-conversation folds (day, 8 days, 64 days, entity) is crossed,
/// joined and split by late events.
fn history_scenario() -> impl Strategy<Value = (Vec<Event>, Vec<usize>)> {
    const DAY: i64 = 86_400_000;
    let at = prop_oneof![
        3 => (0i64..365, 0i64..DAY).prop_map(|(d, t)| d * DAY + t),
        1 => (0i64..365).prop_map(|d| d * DAY),
        1 => (0i64..4).prop_map(|k| 130 * DAY + k * 1_000),
    ];
    let payload = prop_oneof![
        2 => (select(vec!["c0", "c1", "c2", "c3", "c4", "c5", "c6"]), select(vec!["u1", "u2"]), select(vec![Channel::Whatsapp, Channel::Sms]), select(vec!["i1", "i2"])).prop_map(
            |(conversation_id, customer, channel, inbox)| Payload::ConversationOpened {
                conversation_id: conversation_id.into(), customer_id: customer.into(), channel, inbox_id: inbox.into(),
                origin: Origin::Inbound, campaign_id: None,
            }
        ),
        3 => (select(vec!["a1", "a2"]), select(AgentStatus::ALL), proptest::option::of(select(vec!["t1", "t2"]))).prop_map(
            |(agent, status, team)| Payload::AgentStatusChanged { agent_id: agent.into(), team_id: team.map(String::from), status }
        ),
        1 => (select(vec!["wa-1", "wa-2"]), select(ChannelState::ALL), select(Quality::ALL), 0u64..500).prop_map(
            |(channel_id, state, quality, queue_depth)| Payload::ChannelHealth {
                channel_id: channel_id.into(), state, quality, queue_depth, sent_per_minute: 1.5,
            }
        ),
    ];
    proptest::collection::vec((at, payload), 1..80)
        .prop_map(|items| {
            items
                .into_iter()
                .enumerate()
                .map(|(i, (t, payload))| Event {
                    event_id: format!("h{i}"),
                    account_id: 1,
                    occurred_at_ms: 1_700_000_000_000 + t,
                    payload,
                })
                .collect::<Vec<_>>()
        })
        .prop_shuffle()
        .prop_flat_map(|events| {
            let n = events.len();
            (Just(events), proptest::collection::vec(1..=n.max(1), 1..8))
        })
}

/// Pushes `events` in batches of the `cuts` sizes and checks every released state
/// against the batch recomputation of the prefix it covers.
fn check_against_batch(events: &[Event], cuts: &[usize]) -> Result<(), TestCaseError> {
    let batches: Arc<Mutex<Vec<MetricBatch>>> = Arc::default();
    let sink = Arc::clone(&batches);
    let mut pipeline = Pipeline::start(
        &PipelineConfig {
            workers: 2,
            max_in_flight: 2,
            ..PipelineConfig::default()
        },
        move |b| {
            sink.lock().unwrap().push(b);
        },
    )
    .unwrap();
    let mut pos = 0;
    let mut t = 1_000;
    for cut in cuts.iter().cycle() {
        if pos >= events.len() {
            break;
        }
        let end = (pos + cut).min(events.len());
        pipeline.push_at(t, events[pos..end].to_vec()).unwrap();
        t += 10;
        pos = end;
    }
    pipeline.finish();
    let batches = batches.lock().unwrap();
    let mut state = HashMap::new();
    let mut last_progress = 0;
    for b in batches.iter() {
        prop_assert!(b.progress > last_progress, "progress must increase");
        last_progress = b.progress;
        apply(&mut state, b);
        // Released state is exactly that of a whole prefix of pushed batches.
        let prefix = &events[..b.events_consumed as usize];
        prop_assert_eq!(
            &state,
            &reference::facts(prefix),
            "at progress {}",
            b.progress
        );
    }
    prop_assert_eq!(
        batches.last().map(|b| b.events_consumed),
        Some(events.len() as u64)
    );
    prop_assert_eq!(state, reference::facts(events));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn presence_health_and_customers_over_a_year_equal_the_whole_history_folds((events, cuts) in history_scenario()) {
        check_against_batch(&events, &cuts)?;
    }
}

#[test]
fn a_duplicate_delivery_changes_nothing() {
    let opened = Event {
        event_id: "e1".into(),
        account_id: 1,
        occurred_at_ms: 1_764_000_000_000,
        payload: Payload::ConversationOpened {
            conversation_id: "c".into(),
            customer_id: "u".into(),
            channel: Channel::Whatsapp,
            inbox_id: "i".into(),
            origin: Origin::Inbound,
            campaign_id: None,
        },
    };
    let batches: Arc<Mutex<Vec<MetricBatch>>> = Arc::default();
    let sink = Arc::clone(&batches);
    let mut p = Pipeline::start(&PipelineConfig::default(), move |b| {
        sink.lock().unwrap().push(b)
    })
    .unwrap();
    let opened_once = opened.clone();
    p.push_at(10, vec![opened.clone()]).unwrap();
    p.push_at(20, vec![opened]).unwrap();
    p.finish();
    let mut state = HashMap::new();
    for b in batches.lock().unwrap().iter() {
        apply(&mut state, b);
    }
    // The second delivery added nothing: the state is that of one delivery, where
    // every fact appears once.
    assert_eq!(state, reference::facts(std::slice::from_ref(&opened_once)));
    assert!(state.values().all(|n| *n == 1), "{state:?}");
    assert!(state.contains_key(&Fact::ActiveConversation {
        account_id: 1,
        holder: schemas::metrics::Holder::Unassigned,
        agent_id: None,
        channel: Channel::Whatsapp,
        inbox_id: "i".into(),
    }));
}

/// With a one-hour horizon: a customer's first conversation, resolved and then final
/// (its state gone), keeps its "first" fact, and the customer's next conversation is
/// a returning one — the customer fold keeps the first conversation for good. The
/// final conversation's other facts stand too, and a reopen of it is refused.
#[test]
fn a_final_first_conversation_keeps_its_customer_returning() {
    const H: i64 = 3_600_000;
    let t0 = 1_764_000_000_000;
    let ev = |id: &str, at: i64, payload: Payload| Event {
        event_id: id.into(),
        account_id: 1,
        occurred_at_ms: t0 + at,
        payload,
    };
    let open = |id: &str, at, conv: &str| {
        ev(
            id,
            at,
            Payload::ConversationOpened {
                conversation_id: conv.into(),
                customer_id: "u1".into(),
                channel: Channel::Whatsapp,
                inbox_id: "i".into(),
                origin: Origin::Inbound,
                campaign_id: None,
            },
        )
    };
    let inbound = |id: &str, at, conv: &str| {
        ev(
            id,
            at,
            Payload::MessageCreated {
                message_id: id.into(),
                conversation_id: conv.into(),
                direction: Direction::Inbound,
                sender: Sender::Customer,
                agent_id: None,
                channel: Channel::Whatsapp,
                auto_reply: false,
                broadcast_id: None,
            },
        )
    };
    let resolved = ev(
        "r1",
        60_000,
        Payload::ConversationResolved {
            conversation_id: "c1".into(),
            resolved_by: ResolvedBy::Bot,
            agent_id: None,
        },
    );
    let before = vec![open("o1", 0, "c1"), resolved];
    // Another customer's conversation moves the watermark 3 h on: the cut is at 2 h.
    let later: Vec<Event> = (1..=3)
        .map(|k| inbound(&format!("x{k}"), k * H, "cx"))
        .collect();
    let after = vec![
        open("o2", 3 * H + 60_000, "c2"),
        ev(
            "re1",
            3 * H + 120_000,
            Payload::ConversationReopened {
                conversation_id: "c1".into(),
            },
        ),
    ];
    let batches: Arc<Mutex<Vec<MetricBatch>>> = Arc::default();
    let sink = Arc::clone(&batches);
    let mut p = Pipeline::start(
        &PipelineConfig {
            lateness_horizon_ms: Some(H),
            ..PipelineConfig::default()
        },
        move |b| sink.lock().unwrap().push(b),
    )
    .unwrap();
    p.push_at(10, before.clone()).unwrap();
    p.push_at(20, later.clone()).unwrap();
    assert_eq!(p.entities().map(|(_, finalized)| finalized > 0), Some(true));
    p.push_at(30, after.clone()).unwrap();
    let refused: Vec<String> = p
        .take_refused()
        .into_iter()
        .map(|r| r.event.event_id)
        .collect();
    assert_eq!(refused, vec!["re1".to_owned()]);
    p.finish();
    let mut state = HashMap::new();
    for b in batches.lock().unwrap().iter() {
        apply(&mut state, b);
    }
    // Exactly the facts of the accepted events, as if nothing had been forgotten.
    let accepted: Vec<Event> = before
        .into_iter()
        .chain(later)
        .chain(after.into_iter().take(1))
        .collect();
    assert_eq!(state, reference::facts(&accepted));
    let firsts: Vec<bool> = state
        .keys()
        .filter_map(|f| match f {
            Fact::CustomerConversation { first, .. } => Some(*first),
            _ => None,
        })
        .collect();
    assert_eq!(firsts.iter().filter(|f| **f).count(), 1, "{firsts:?}");
    assert_eq!(firsts.len(), 2, "{firsts:?}");
}

/// Pushes `events` in batches of the `cuts` sizes (the first `skip` batches are not
/// pushed: they are covered by the state `resume` was taken from) into a pipeline with
/// a lateness horizon; returns its final consolidated facts, what it refused, and its
/// serialized state after the first `stop` batches when asked.
fn run_horizon(
    events: &[Event],
    cuts: &[usize],
    horizon_ms: i64,
    resume: Option<(&[u8], HashMap<Fact, i64>, usize)>,
    stop: Option<usize>,
) -> (HashMap<Fact, i64>, Vec<u64>, Option<Vec<u8>>) {
    let batches: Arc<Mutex<Vec<MetricBatch>>> = Arc::default();
    let sink = Arc::clone(&batches);
    let config = PipelineConfig {
        workers: 2,
        max_in_flight: 2,
        lateness_horizon_ms: Some(horizon_ms),
        ..PipelineConfig::default()
    };
    let on_batch = move |b| sink.lock().unwrap().push(b);
    let (mut pipeline, mut state, skip) = match resume {
        Some((bytes, facts, skip)) => {
            let state: crmpulse_pipeline::PipelineState = postcard::from_bytes(bytes).unwrap();
            let warm = state.finalizer.warm_positions();
            let mut p = Pipeline::resume(&config, state, on_batch).unwrap();
            p.warm(warm.iter().map(|&i| events[i as usize].clone()).collect())
                .unwrap();
            (p, facts, skip)
        }
        None => (
            Pipeline::start(&config, on_batch).unwrap(),
            HashMap::new(),
            0,
        ),
    };
    let mut pos = 0;
    let mut t = 1_000;
    let mut refused = Vec::new();
    let mut snapshot = None;
    for (i, cut) in cuts.iter().cycle().enumerate() {
        if pos >= events.len() || stop == Some(i) {
            break;
        }
        let end = (pos + cut).min(events.len());
        if i >= skip {
            pipeline.push_at(t, events[pos..end].to_vec()).unwrap();
            refused.extend(pipeline.take_refused().into_iter().map(|r| r.position));
        }
        t += 10;
        pos = end;
    }
    if stop.is_some() {
        snapshot = Some(postcard::to_stdvec(&pipeline.state().unwrap()).unwrap());
    }
    pipeline.finish();
    for b in batches.lock().unwrap().iter() {
        apply(&mut state, b);
    }
    (state, refused, snapshot)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// A pipeline resumed from a checkpoint (its state serialized, the facts released
    /// so far, the live entities' events replayed) ends with the same facts and
    /// refuses the same events as one that never stopped, wherever it stopped.
    #[test]
    fn a_pipeline_resumed_from_its_checkpoint_equals_one_that_never_stopped(
        (events, cuts) in scenario(),
        stop in 0usize..12,
        horizon_min in prop_oneof![Just(5i64), Just(10), Just(30)],
    ) {
        let horizon = horizon_min * 60_000;
        let (whole, whole_refused, _) = run_horizon(&events, &cuts, horizon, None, None);
        let (before, mut refused, state) = run_horizon(&events, &cuts, horizon, None, Some(stop));
        let state = state.unwrap();
        let (after, later, _) =
            run_horizon(&events, &cuts, horizon, Some((&state, before, stop)), None);
        refused.extend(later);
        prop_assert_eq!(refused, whole_refused);
        prop_assert_eq!(after, whole);
    }
}

/// A restart from a checkpoint where a customer's first conversation is final (its
/// events are not replayed) and a later one is live: the resumed customer fold must
/// still know the first conversation, or an open between the two would be taken for
/// the customer's first. Equal to the pipeline that never stopped and to the batch
/// recomputation.
#[test]
fn a_resumed_pipeline_remembers_a_final_first_conversation() {
    const H: i64 = 3_600_000;
    let t0 = 1_764_000_000_000;
    let ev = |id: &str, at: i64, payload: Payload| Event {
        event_id: id.into(),
        account_id: 1,
        occurred_at_ms: t0 + at,
        payload,
    };
    let open = |id: &str, at, conv: &str| {
        ev(
            id,
            at,
            Payload::ConversationOpened {
                conversation_id: conv.into(),
                customer_id: "u1".into(),
                channel: Channel::Whatsapp,
                inbox_id: "i".into(),
                origin: Origin::Inbound,
                campaign_id: None,
            },
        )
    };
    let status = |id: &str, at| {
        ev(
            id,
            at,
            Payload::AgentStatusChanged {
                agent_id: "a1".into(),
                team_id: None,
                status: AgentStatus::Online,
            },
        )
    };
    let events = vec![
        open("o1", 0, "c1"),
        ev(
            "r1",
            60_000,
            Payload::ConversationResolved {
                conversation_id: "c1".into(),
                resolved_by: ResolvedBy::Bot,
                agent_id: None,
            },
        ),
        status("s1", H),
        status("s2", 2 * H),
        status("s3", 3 * H),
        open("o2", 3 * H, "c2"),
        // After the checkpoint: earlier than c2, later than the final c1.
        open("o3", 3 * H - 60_000, "c3"),
    ];
    let cuts = [6, 1];
    let (whole, whole_refused, _) = run_horizon(&events, &cuts, H, None, None);
    assert!(whole_refused.is_empty());
    assert_eq!(whole, reference::facts(&events));
    let (before, _, state) = run_horizon(&events, &cuts, H, None, Some(1));
    let (after, refused, _) =
        run_horizon(&events, &cuts, H, Some((&state.unwrap(), before, 1)), None);
    assert!(refused.is_empty());
    assert_eq!(after, whole);
}
