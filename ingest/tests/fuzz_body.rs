//! Fuzzing the ingest body decoder (issue 14): `POST /api/v1/events` bodies, a JSON
//! array or NDJSON, built from arbitrary bytes, from valid events with lines damaged,
//! and from valid lines mixed with garbage. Properties: never a panic; every item is
//! either an event or a rejection; a rejection carries its item's index and text and
//! names the field at fault (`field: problem`); an unreadable array is one error naming
//! the body.
//!
//! A long run: `PROPTEST_CASES=1000000 cargo test -p crmpulse-ingest --release --test
//! fuzz_body` (docs/operations.md, "Fuzzing").

use crmpulse_ingest::http::parse_body;
use proptest::prelude::*;
use serde_json::json;

/// A valid event as one JSON line.
fn valid_line(i: u32) -> String {
    json!({
        "event_id": format!("e{i}"), "account_id": 1, "occurred_at": "2026-11-24T10:00:00Z",
        "type": "conversation_opened", "conversation_id": format!("c{i}"), "customer_id": "u1",
        "channel": "whatsapp", "inbox_id": "i1", "origin": "inbound",
    })
    .to_string()
}

/// `field: problem`, with a field name of the canonical form.
fn names_a_field(error: &str) -> bool {
    error.split_once(": ").is_some_and(|(field, problem)| {
        !field.is_empty()
            && !problem.is_empty()
            && field
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.'))
    })
}

/// Checks the decoder's answer for `body`, whose items (as the decoder splits them) are
/// `items` when the body is NDJSON.
fn check(body: &str) -> Result<(), TestCaseError> {
    match parse_body(body) {
        Ok((events, rejected)) => {
            let items = if body.trim_start().starts_with('[') {
                serde_json::from_str::<Vec<&serde_json::value::RawValue>>(body)
                    .map(|v| v.len())
                    .unwrap_or_default()
            } else {
                body.lines().filter(|l| !l.trim().is_empty()).count()
            };
            prop_assert_eq!(events.len() + rejected.len(), items);
            for (r, raw) in &rejected {
                prop_assert!(names_a_field(&r.error), "{:?}", r.error);
                prop_assert!(!r.kind.is_empty());
                if !body.trim_start().starts_with('[') {
                    prop_assert_eq!(body.lines().nth(r.index), Some(*raw));
                }
            }
        }
        Err(message) => {
            prop_assert!(body.trim_start().starts_with('['), "{message}");
            prop_assert!(
                message.starts_with("body: not a valid JSON array"),
                "{message}"
            );
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn arbitrary_bytes_are_events_or_named_rejections(
        bytes in proptest::collection::vec(any::<u8>(), 0..4096),
    ) {
        check(&String::from_utf8_lossy(&bytes))?;
    }

    /// NDJSON of valid lines, some damaged (bytes flipped, cut short) and some garbage:
    /// the valid ones are kept, each damaged one is a rejection of its own line.
    #[test]
    fn damaged_ndjson_lines_are_rejected_one_by_one(
        lines in proptest::collection::vec(
            (0u32..1000, proptest::option::of((any::<prop::sample::Index>(), 1u8..)), any::<bool>()),
            1..40,
        ),
        garbage in proptest::collection::vec("\\PC{0,80}", 0..5),
    ) {
        let mut text: Vec<String> = Vec::new();
        let mut intact = 0;
        for (i, damage, cut) in &lines {
            let mut line = valid_line(*i).into_bytes();
            match damage {
                Some((at, mask)) => {
                    let k = at.index(line.len());
                    line[k] ^= mask;
                    if *cut {
                        line.truncate(k);
                    }
                }
                None => intact += 1,
            }
            // One item per line: a flipped byte must not split or join lines.
            let line = String::from_utf8_lossy(&line).replace(['\n', '\r'], " ");
            text.push(line);
        }
        text.extend(garbage.iter().map(|g| g.replace(['\n', '\r'], " ")));
        let body = text.join("\n");
        check(&body)?;
        if !body.trim_start().starts_with('[') {
            let (events, _) = parse_body(&body).unwrap();
            prop_assert!(events.len() >= intact);
        }
    }

    /// A JSON array of valid and damaged items.
    #[test]
    fn damaged_arrays_are_one_error_or_named_rejections(
        n in 0u32..30,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..), 0..4),
    ) {
        let items: Vec<String> = (0..n).map(valid_line).collect();
        let mut body = format!("[{}]", items.join(",")).into_bytes();
        for (at, mask) in &flips {
            let k = at.index(body.len());
            body[k] ^= mask;
        }
        check(&String::from_utf8_lossy(&body))?;
    }
}
