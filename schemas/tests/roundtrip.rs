//! Property tests: every valid event survives JSON and protobuf round trips unchanged,
//! and arbitrary bytes or JSON never panic the decoders.

use crmpulse_schemas::event::*;
use proptest::prelude::*;
use proptest::sample::select;

fn id() -> impl Strategy<Value = String> {
    "[a-z0-9_-]{1,12}"
}

fn opt_id() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(id())
}

fn payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        (
            id(),
            id(),
            select(Channel::ALL),
            id(),
            select(Origin::ALL),
            opt_id()
        )
            .prop_map(
                |(conversation_id, customer_id, channel, inbox_id, origin, campaign_id)| {
                    Payload::ConversationOpened {
                        conversation_id,
                        customer_id,
                        channel,
                        inbox_id,
                        origin,
                        campaign_id,
                    }
                }
            ),
        (id(), select(Assignee::ALL), opt_id(), opt_id()).prop_map(
            |(conversation_id, assignee, agent_id, team_id)| {
                Payload::ConversationAssigned {
                    conversation_id,
                    assignee,
                    agent_id,
                    team_id,
                }
            }
        ),
        (id(), opt_id()).prop_map(|(conversation_id, reason)| Payload::ConversationEscalated {
            conversation_id,
            reason
        }),
        (id(), select(ResolvedBy::ALL), opt_id()).prop_map(
            |(conversation_id, resolved_by, agent_id)| {
                Payload::ConversationResolved {
                    conversation_id,
                    resolved_by,
                    agent_id,
                }
            }
        ),
        id().prop_map(|conversation_id| Payload::ConversationReopened { conversation_id }),
        (
            id(),
            id(),
            select(Direction::ALL),
            select(Sender::ALL),
            opt_id(),
            select(Channel::ALL),
            opt_id(),
            any::<bool>()
        )
            .prop_map(
                |(
                    message_id,
                    conversation_id,
                    direction,
                    sender,
                    agent_id,
                    channel,
                    broadcast_id,
                    auto_reply,
                )| {
                    Payload::MessageCreated {
                        message_id,
                        conversation_id,
                        direction,
                        sender,
                        agent_id,
                        channel,
                        broadcast_id,
                        auto_reply,
                    }
                }
            ),
        (
            id(),
            select(DeliveryStatus::ALL),
            proptest::option::of(any::<i64>()),
            opt_id()
        )
            .prop_map(|(message_id, status, error_code, error_title)| {
                Payload::MessageStatus {
                    message_id,
                    status,
                    error_code,
                    error_title,
                }
            }),
        (id(), opt_id(), select(AgentStatus::ALL)).prop_map(|(agent_id, team_id, status)| {
            Payload::AgentStatusChanged {
                agent_id,
                team_id,
                status,
            }
        }),
        (id(), opt_id(), select(Priority::ALL)).prop_map(
            |(ticket_id, conversation_id, priority)| Payload::TicketOpened {
                ticket_id,
                conversation_id,
                priority
            }
        ),
        id().prop_map(|ticket_id| Payload::TicketResolved { ticket_id }),
        (id(), id(), proptest::option::of(0.0f64..=1.0)).prop_map(
            |(conversation_id, intent, confidence)| {
                Payload::IntentDetected {
                    conversation_id,
                    intent,
                    confidence,
                }
            }
        ),
        (id(), 1u8..=5).prop_map(|(conversation_id, score)| Payload::CsatSubmitted {
            conversation_id,
            score
        }),
        (id(), id(), opt_id(), opt_id()).prop_map(
            |(lead_id, customer_id, conversation_id, campaign_id)| {
                Payload::LeadCreated {
                    lead_id,
                    customer_id,
                    conversation_id,
                    campaign_id,
                }
            }
        ),
        (id(), 0i64..=MAX_AMOUNT_MINOR, "[A-Z]{3}").prop_map(
            |(lead_id, amount_minor, currency)| {
                Payload::DealWon {
                    lead_id,
                    amount_minor,
                    currency,
                }
            }
        ),
        (id(), opt_id(), 0..=MAX_RECIPIENTS).prop_map(|(broadcast_id, campaign_id, recipients)| {
            Payload::BroadcastSent {
                broadcast_id,
                campaign_id,
                recipients,
            }
        }),
        (
            id(),
            select(ChannelState::ALL),
            select(Quality::ALL),
            0..=MAX_QUEUE_DEPTH,
            0.0f64..=MAX_SENT_PER_MINUTE
        )
            .prop_map(
                |(channel_id, state, quality, queue_depth, sent_per_minute)| {
                    Payload::ChannelHealth {
                        channel_id,
                        state,
                        quality,
                        queue_depth,
                        sent_per_minute,
                    }
                }
            ),
    ]
}

fn event() -> impl Strategy<Value = Event> {
    (id(), any::<u64>(), 0i64..253_402_300_799_999, payload()).prop_map(
        |(event_id, account_id, occurred_at_ms, payload)| Event {
            event_id,
            account_id,
            occurred_at_ms,
            payload,
        },
    )
}

proptest! {
    #[test]
    fn json_round_trip(e in event()) {
        let text = e.to_json();
        prop_assert_eq!(Event::from_json(&text).unwrap(), e);
    }

    #[test]
    fn protobuf_round_trip(e in event()) {
        prop_assert_eq!(Event::from_proto_bytes(&e.to_proto_bytes()).unwrap(), e);
    }

    #[test]
    fn protobuf_and_json_agree(e in event()) {
        let via_proto = Event::from_proto_bytes(&e.to_proto_bytes()).unwrap();
        prop_assert_eq!(via_proto.to_json(), e.to_json());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = Event::from_proto_bytes(&bytes);
        let _ = Event::from_json(&String::from_utf8_lossy(&bytes));
    }

    /// Fuzzing the decoders from valid inputs reaches much deeper than random bytes:
    /// flipped bits inside a real protobuf event or its JSON text give errors, never
    /// a panic.
    #[test]
    fn mutated_valid_events_never_panic(
        e in event(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..), 1..8),
    ) {
        let mut proto = e.to_proto_bytes();
        let mut json = e.to_json().into_bytes();
        for (at, mask) in &flips {
            let k = at.index(proto.len().max(1));
            if let Some(b) = proto.get_mut(k) { *b ^= mask; }
            let k = at.index(json.len());
            json[k] ^= mask;
        }
        let _ = Event::from_proto_bytes(&proto);
        let _ = Event::from_json(&String::from_utf8_lossy(&json));
    }

    /// Any JSON value in any field (wrong types, nesting, huge numbers) is refused with
    /// the field's name, or accepted, but never panics.
    #[test]
    fn any_value_in_any_field_never_panics(
        e in event(),
        pick in any::<prop::sample::Index>(),
        replacement in prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(|f| serde_json::json!(f)),
            ".{0,12}".prop_map(serde_json::Value::from),
            Just(serde_json::json!([1, {"a": []}])),
            Just(serde_json::json!({"nested": {"deep": [null]}})),
            Just(serde_json::json!(u64::MAX)),
        ],
    ) {
        let mut v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
        let keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        let field = pick.get(&keys).clone();
        v.as_object_mut().unwrap().insert(field, replacement);
        let _ = Event::from_json_value(&v);
        let _ = Event::from_json(&v.to_string());
    }

    #[test]
    fn dropping_a_required_field_names_it(e in event(), pick in any::<prop::sample::Index>()) {
        let mut v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
        let required: Vec<String> = v.as_object().unwrap().keys()
            .filter(|k| !matches!(k.as_str(), "campaign_id" | "agent_id" | "team_id" | "reason" | "broadcast_id"
                | "auto_reply" | "error_code" | "error_title" | "conversation_id" | "confidence"))
            .cloned().collect();
        // conversation_id is optional for tickets and leads only; keep the rule simple by
        // skipping it, it is covered by unit tests.
        let field = pick.get(&required).clone();
        v.as_object_mut().unwrap().remove(&field);
        let err = Event::from_json_value(&v).unwrap_err();
        prop_assert_eq!(err.field, field);
    }
}

/// Names a decoder error may carry: `event` for the record as a whole, or a field of
/// the canonical form.
fn names_a_field(err: &EventError) -> bool {
    !err.field.is_empty()
        && !err.problem.is_empty()
        && err
            .field
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.'))
}

// Fuzzing (issue 14): arbitrary and mutated inputs never panic a decoder, and whatever
// is refused is refused with an error naming what is wrong. A short run is part of
// `cargo test`; a long one is `PROPTEST_CASES=1000000 cargo test -p crmpulse-schemas
// --release --test roundtrip` (docs/operations.md, "Fuzzing").
proptest! {
    /// Bytes that are not JSON are refused as `event: not valid JSON`; JSON that is not
    /// an event names its field.
    #[test]
    fn arbitrary_json_text_is_refused_naming_what_is_wrong(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
    ) {
        let text = String::from_utf8_lossy(&bytes);
        if let Err(err) = Event::from_json(&text) {
            prop_assert!(names_a_field(&err), "{err:?}");
            if serde_json::from_str::<serde_json::Value>(&text).is_err() {
                prop_assert_eq!(err.field.as_str(), "event");
                prop_assert!(err.problem.starts_with("not valid JSON"), "{err}");
            }
        }
    }

    /// Arbitrary protobuf bytes (as a Kafka message's payload) are decoded or refused
    /// with a named field; what decodes is a valid event that round-trips.
    #[test]
    fn arbitrary_protobuf_is_refused_naming_what_is_wrong(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
    ) {
        match Event::from_proto_bytes(&bytes) {
            Ok(e) => prop_assert_eq!(Event::from_proto_bytes(&e.to_proto_bytes()).unwrap(), e),
            Err(err) => prop_assert!(names_a_field(&err), "{err:?}"),
        }
    }

    /// A valid protobuf event cut short, or with bytes flipped, is refused with a named
    /// field, or decodes to an event that round-trips.
    #[test]
    fn mutated_protobuf_events_are_refused_naming_what_is_wrong(
        e in event(),
        cut in any::<prop::sample::Index>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..), 0..8),
    ) {
        let mut proto = e.to_proto_bytes();
        proto.truncate(cut.index(proto.len() + 1));
        for (at, mask) in &flips {
            let k = at.index(proto.len().max(1));
            if let Some(b) = proto.get_mut(k) { *b ^= mask; }
        }
        match Event::from_proto_bytes(&proto) {
            Ok(d) => prop_assert_eq!(Event::from_proto_bytes(&d.to_proto_bytes()).unwrap(), d),
            Err(err) => prop_assert!(names_a_field(&err), "{err:?}"),
        }
    }

    /// One field of a valid event replaced by any JSON value: accepted, or refused
    /// naming that field (a changed `type` may name a field the new type needs).
    #[test]
    fn a_bad_value_is_refused_naming_its_field(
        e in event(),
        pick in any::<prop::sample::Index>(),
        replacement in prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(|f| serde_json::json!(f)),
            ".{0,12}".prop_map(serde_json::Value::from),
            "\\PC{0,300}".prop_map(serde_json::Value::from),
            Just(serde_json::json!([1, {"a": []}])),
            Just(serde_json::json!({"nested": {"deep": [null]}})),
            Just(serde_json::json!(u64::MAX)),
            Just(serde_json::json!(-1)),
            Just(serde_json::json!(1e300)),
        ],
    ) {
        let mut v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
        let keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        let field = pick.get(&keys).clone();
        v.as_object_mut().unwrap().insert(field.clone(), replacement);
        if let Err(err) = Event::from_json_value(&v) {
            prop_assert!(names_a_field(&err), "{err:?}");
            if field != "type" {
                prop_assert_eq!(&err.field, &field, "{}", err);
            }
        }
    }
}
