//! The wire form of `crm.metrics.v1` (`proto/crmpulse/v1/metrics.proto`): metric
//! deltas and progress records, and their checked conversion to and from [`Fact`]s.
//!
//! A fact is encoded generically, from its serde form: the variant name in snake case
//! becomes `kind` and every field a named [`proto::Dimension`] (absent options are left
//! out). A new `Fact` variant therefore needs no proto change, and a consumer in any
//! language rebuilds views from `kind` + `dims` alone. The invariant this module keeps:
//! `decode(encode(fact)) == fact` for every fact (property-tested in `tests/`).
//!
//! [`Assembler`] turns the records read from every partition back into complete
//! [`MetricBatch`](crate::metrics::MetricBatch)es.

pub mod assembler;

pub use assembler::Assembler;

use prost::Message as _;
use serde_json::{Map, Number, Value};

use crate::metrics::Fact;
use crate::proto;

/// Errors decoding a `crm.metrics.v1` record.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The bytes are not a protobuf `MetricRecord`.
    #[error("not a crmpulse.v1.MetricRecord: {0}")]
    Protobuf(#[from] prost::DecodeError),
    /// The record has neither deltas nor progress.
    #[error("empty MetricRecord")]
    Empty,
    /// A fact of an unknown kind, or whose dimensions do not fit its kind.
    #[error("fact of kind {kind:?}: {reason}")]
    Fact {
        /// The record's kind.
        kind: String,
        /// What did not fit.
        reason: String,
    },
}

/// One decoded record of `crm.metrics.v1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricRecord {
    /// Changes belonging to the pipeline batch complete at `progress`.
    Deltas {
        /// Pipeline time (ms) of the batch.
        progress: u64,
        /// `(fact, diff)` changes.
        updates: Vec<(Fact, i64)>,
    },
    /// Everything below `progress` has been written to this partition.
    Progress {
        /// Pipeline time (ms), exclusive.
        progress: u64,
        /// Input events consumed when the state was complete.
        events_consumed: u64,
    },
}

impl MetricRecord {
    /// The protobuf bytes of the record.
    pub fn encode(&self) -> Vec<u8> {
        let record = match self {
            MetricRecord::Deltas { progress, updates } => {
                proto::metric_record::Record::Deltas(proto::MetricDeltas {
                    progress: *progress,
                    deltas: updates.iter().map(|(f, d)| encode_fact(f, *d)).collect(),
                })
            }
            MetricRecord::Progress {
                progress,
                events_consumed,
            } => proto::metric_record::Record::Progress(proto::Progress {
                progress: *progress,
                events_consumed: *events_consumed,
            }),
        };
        proto::MetricRecord {
            record: Some(record),
        }
        .encode_to_vec()
    }

    /// Decodes protobuf bytes.
    ///
    /// # Errors
    /// [`RecordError`] when the bytes are not a record or a fact does not decode.
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        match proto::MetricRecord::decode(bytes)?.record {
            Some(proto::metric_record::Record::Deltas(d)) => Ok(MetricRecord::Deltas {
                progress: d.progress,
                updates: d.deltas.iter().map(decode_fact).collect::<Result<_, _>>()?,
            }),
            Some(proto::metric_record::Record::Progress(p)) => Ok(MetricRecord::Progress {
                progress: p.progress,
                events_consumed: p.events_consumed,
            }),
            None => Err(RecordError::Empty),
        }
    }
}

/// Encodes one fact and its diff.
pub fn encode_fact(fact: &Fact, diff: i64) -> proto::FactDelta {
    let mut dims = std::collections::HashMap::new();
    // A Fact serializes as `{"VariantName": {field: value, ..}}` (serde's external tag).
    if let Ok(Value::Object(outer)) = serde_json::to_value(fact)
        && let Some((_, Value::Object(fields))) = outer.into_iter().next()
    {
        for (name, value) in fields {
            if let Some(dim) = dimension(value) {
                dims.insert(name, dim);
            }
        }
    }
    proto::FactDelta {
        kind: fact.kind().to_owned(),
        dims,
        diff,
    }
}

fn dimension(value: Value) -> Option<proto::Dimension> {
    use proto::dimension::Value as D;
    let v = match value {
        Value::Null => return None,
        Value::Bool(b) => D::Flag(b),
        Value::String(s) => D::Text(s),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => D::Int(i),
            (None, Some(u), _) => D::Uint(u),
            (None, None, Some(f)) => D::Real(f),
            _ => return None,
        },
        // Facts hold scalars only; a nested value is kept as its JSON text.
        other => D::Text(other.to_string()),
    };
    Some(proto::Dimension { value: Some(v) })
}

/// Decodes one fact and its diff.
///
/// # Errors
/// [`RecordError::Fact`] for an unknown kind or dimensions that do not fit it.
pub fn decode_fact(delta: &proto::FactDelta) -> Result<(Fact, i64), RecordError> {
    use proto::dimension::Value as D;
    let mut fields = Map::new();
    for (name, dim) in &delta.dims {
        let value = match &dim.value {
            Some(D::Text(s)) => Value::String(s.clone()),
            Some(D::Int(i)) => Value::Number((*i).into()),
            Some(D::Uint(u)) => Value::Number((*u).into()),
            Some(D::Flag(b)) => Value::Bool(*b),
            Some(D::Real(f)) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
            None => Value::Null,
        };
        fields.insert(name.clone(), value);
    }
    let mut outer = Map::new();
    outer.insert(variant_name(&delta.kind), Value::Object(fields));
    let fact: Fact =
        serde_json::from_value(Value::Object(outer)).map_err(|e| RecordError::Fact {
            kind: delta.kind.clone(),
            reason: e.to_string(),
        })?;
    Ok((fact, delta.diff))
}

/// `first_response` → `FirstResponse` (serde's variant name).
fn variant_name(kind: &str) -> String {
    kind.split('_')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |c| {
                c.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Channel, Priority};
    use crate::metrics::Holder;

    #[test]
    fn facts_round_trip_through_kind_and_dimensions() {
        let facts = [
            Fact::ActiveConversation {
                account_id: 7,
                holder: Holder::Agent,
                agent_id: Some("a1".into()),
                channel: Channel::Whatsapp,
                inbox_id: "in".into(),
            },
            Fact::OpenTicket {
                account_id: u64::MAX,
                priority: Priority::Urgent,
            },
            Fact::DealWon {
                account_id: 1,
                bucket: -3_600_000,
                campaign_id: None,
                amount_minor: 12_345,
                currency: "EUR".into(),
            },
        ];
        for (i, fact) in facts.into_iter().enumerate() {
            let delta = encode_fact(&fact, -(i as i64) - 1);
            assert_eq!(delta.kind, fact.kind());
            assert_eq!(decode_fact(&delta).unwrap(), (fact, -(i as i64) - 1));
        }
    }

    #[test]
    fn the_dimensions_are_named_fields_and_absent_options_are_left_out() {
        let delta = encode_fact(
            &Fact::Lead {
                account_id: 2,
                bucket: 3_600_000,
                campaign_id: None,
            },
            1,
        );
        let mut names: Vec<_> = delta.dims.keys().cloned().collect();
        names.sort();
        assert_eq!(names, ["account_id", "bucket"]);
        assert_eq!(
            delta.dims["bucket"].value,
            Some(proto::dimension::Value::Int(3_600_000))
        );
    }

    #[test]
    fn records_round_trip_and_unknown_kinds_are_refused() {
        let record = MetricRecord::Deltas {
            progress: 99,
            updates: vec![(
                Fact::OpenTicket {
                    account_id: 1,
                    priority: Priority::Low,
                },
                2,
            )],
        };
        assert_eq!(MetricRecord::decode(&record.encode()).unwrap(), record);
        let progress = MetricRecord::Progress {
            progress: 5,
            events_consumed: 4,
        };
        assert_eq!(MetricRecord::decode(&progress.encode()).unwrap(), progress);
        let bad = proto::FactDelta {
            kind: "no_such_fact".into(),
            dims: Default::default(),
            diff: 1,
        };
        assert!(matches!(
            decode_fact(&bad),
            Err(RecordError::Fact { kind, .. }) if kind == "no_such_fact"
        ));
        assert!(matches!(MetricRecord::decode(&[]), Err(RecordError::Empty)));
    }
}
