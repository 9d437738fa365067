//! A first reply that was given within the target but arrives after the deadline
//! passed un-breaches the conversation: SLA compliance is recomputed from the facts at
//! each complete timestamp, so the breach shown meanwhile disappears.

use std::sync::Arc;

use chrono::DateTime;
use crmpulse_query_api::sections::{Params, compute};
use crmpulse_query_api::{AppState, ViewStore};
use schemas::event::Channel;
use schemas::metrics::{Fact, MetricBatch};
use serde_json::{Value, json};

fn ms(s: &str) -> i64 {
    DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
}

fn sla(app: &AppState) -> Value {
    let query = [("from".to_owned(), "2026-11-24".to_owned())].into();
    let params = Params::parse(&query).unwrap();
    compute(app, "conversation-effectiveness", &params, 0).unwrap()["sla"]["current"].clone()
}

#[test]
fn a_late_first_reply_within_target_unbreaches_the_conversation() {
    let store = Arc::new(ViewStore::default());
    let app = AppState::new(Arc::clone(&store));
    let awaiting = Fact::AwaitingFirstResponse {
        account_id: 1,
        bucket: ms("2026-11-24T10:00:00Z"),
        start_ms: ms("2026-11-24T10:00:00Z"),
        resolved_at_ms: None,
        channel: Channel::Whatsapp,
        inbox_id: "i1".into(),
        team_id: None,
    };
    // 10:10: nobody has answered the 10:00 conversation; its 10:05 deadline passed.
    store.apply(MetricBatch {
        progress: ms("2026-11-24T10:10:00Z") as u64,
        events_consumed: 1,
        updates: vec![(awaiting.clone(), 1)],
    });
    assert_eq!(
        sla(&app),
        json!({"met": 0, "replied": 0, "breached_unanswered": 1, "compliance": 0.0})
    );
    // 10:20: the agent's 10:03 reply arrives late: 180 s, within the 300 s target.
    store.apply(MetricBatch {
        progress: ms("2026-11-24T10:20:00Z") as u64,
        events_consumed: 2,
        updates: vec![
            (awaiting, -1),
            (
                Fact::FirstResponse {
                    account_id: 1,
                    bucket: ms("2026-11-24T10:00:00Z"),
                    seconds: 180,
                    channel: Channel::Whatsapp,
                    inbox_id: "i1".into(),
                    agent_id: Some("a1".into()),
                    team_id: None,
                },
                1,
            ),
        ],
    });
    assert_eq!(
        sla(&app),
        json!({"met": 1, "replied": 1, "breached_unanswered": 0, "compliance": 1.0})
    );
}
