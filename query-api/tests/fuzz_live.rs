//! Fuzzing the `/api/live` client message parser (issue 14): arbitrary text frames, and
//! JSON messages with any `op` and any fields, sent to a connection. Properties: the
//! server never panics, answers every message it cannot act on with one error frame
//! whose message names what is wrong, and keeps the connection open (a valid subscribe
//! afterwards still gets its snapshot).
//!
//! Run through [`live::serve`] with channels (authentication off: the parser is what is
//! fuzzed). A long run: `PROPTEST_CASES=100000 cargo test -p crmpulse-query-api
//! --release --test fuzz_live` (docs/operations.md, "Fuzzing").

use std::sync::Arc;
use std::time::Duration;

use crmpulse_query_api::{AppState, ViewStore, live};
use proptest::prelude::*;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;

fn app() -> AppState {
    let mut app = AppState::new(Arc::new(ViewStore::default()));
    app.clock = schemas::Clock::starting_at(1_795_000_000_000);
    app
}

/// Sends `messages` then a valid subscribe on one connection; returns every frame the
/// server sent in answer (heartbeats left out).
fn converse(runtime: &tokio::runtime::Runtime, messages: &[String]) -> Vec<Value> {
    runtime.block_on(async {
        let (to_server, requests) = mpsc::unbounded_channel::<String>();
        let (frames, mut from_server) = mpsc::unbounded_channel::<String>();
        let sink = Box::pin(futures_util::sink::unfold(
            frames,
            |frames, frame: String| async move {
                frames.send(frame).map_err(|_| ())?;
                Ok::<_, ()>(frames)
            },
        ));
        let server = tokio::spawn(live::serve(
            app(),
            sink,
            UnboundedReceiverStream::new(requests),
        ));
        for m in messages {
            to_server.send(m.clone()).unwrap();
        }
        to_server
            .send(json!({"op": "subscribe", "id": "probe", "section": "kpi"}).to_string())
            .unwrap();
        let mut answers = Vec::new();
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(10), from_server.recv())
                .await
                .expect("an answer within 10 s")
                .expect("the connection stays open");
            let frame: Value = serde_json::from_str(&frame).expect("frames are JSON");
            if frame["type"] == "progress" {
                continue;
            }
            let done = frame["type"] == "snapshot" && frame["id"] == "probe";
            answers.push(frame);
            if done {
                break;
            }
        }
        drop(to_server);
        let _ = server.await;
        answers
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Every answer but the probe's snapshot is an error frame with a message.
fn only_named_errors(answers: &[Value]) -> Result<(), TestCaseError> {
    let (probe, rest) = answers.split_last().unwrap();
    prop_assert_eq!(&probe["type"], "snapshot");
    for a in rest {
        match a["type"].as_str() {
            // A message that happened to be a valid subscribe or auth.
            Some("snapshot" | "authenticated") => {}
            Some("error") => {
                let message = a["message"].as_str().unwrap_or_default();
                prop_assert!(!message.is_empty(), "{}", a);
            }
            _ => prop_assert!(false, "unexpected frame {}", a),
        }
    }
    Ok(())
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        "\\PC{0,20}".prop_map(Value::from),
        prop::sample::select(vec![
            "kpi",
            "customer-load",
            "subscribe",
            "unsubscribe",
            "auth"
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::hash_map(
                prop::sample::select(vec!["op", "id", "section", "params", "token", "from", "x"]),
                inner,
                0..5,
            )
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}

proptest! {
    #[test]
    fn arbitrary_text_frames_get_named_errors_and_the_connection_stays(
        frames in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..512), 1..6),
    ) {
        let messages: Vec<String> = frames
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .filter(|m| !m.is_empty())
            .collect();
        let answers = converse(&runtime(), &messages);
        only_named_errors(&answers)?;
        // Text that is not JSON is refused as a message that does not parse.
        for (m, a) in messages.iter().zip(&answers) {
            if serde_json::from_str::<Value>(m).is_err() {
                prop_assert_eq!(&a["type"], "error");
                prop_assert!(a["message"].as_str().unwrap().starts_with("message: "), "{}", a);
            }
        }
    }

    #[test]
    fn any_json_message_gets_an_answer_or_a_named_error(
        ops in prop::collection::vec(
            (prop::sample::select(vec!["subscribe", "unsubscribe", "auth", "dance", ""]), any_json()),
            1..6,
        ),
    ) {
        let messages: Vec<String> = ops
            .iter()
            .map(|(op, body)| {
                let mut m = match body {
                    Value::Object(m) => m.clone(),
                    other => [("params".to_owned(), other.clone())].into_iter().collect(),
                };
                m.entry("op").or_insert_with(|| Value::from(*op));
                Value::Object(m).to_string()
            })
            .collect();
        only_named_errors(&converse(&runtime(), &messages))?;
    }
}
