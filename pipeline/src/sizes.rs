//! How many updates each arrangement of the dataflow holds, from differential's own
//! `differential/arrange` log: the gauge `crmpulse_pipeline_arranged_updates{operator,
//! worker}`, and [`ArrangedUpdates`] for the benchmarks. On when
//! [`crate::PipelineConfig::arrangement_sizes`] is (`[pipeline] arrangement_sizes`). This is where the pipeline's
//! memory is (as Materialize's `mz_arrangement_sizes`); what grows with history shows
//! here first.
//!
//! A trace's batches balance: a batch adds its updates, a completed merge replaces its
//! two inputs by its output, a dropped batch removes its updates. Operator names come
//! from timely's `Operates` events, logged while the dataflow is built; the `timely`
//! log is unbound as soon as the dataflow is built, as its other events (every
//! schedule, every message) would cost every step.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use differential_dataflow::logging::{DifferentialEvent, DifferentialEventBuilder};
use timely::logging::{TimelyEvent, TimelyEventBuilder};
use timely::worker::Worker;

/// Updates held per (worker, operator name), summed over the operator's arrangements.
#[derive(Debug, Clone, Default)]
pub struct ArrangedUpdates(Arc<Mutex<BTreeMap<(usize, String), i64>>>);

impl ArrangedUpdates {
    /// Updates held per operator name, summed over workers, largest first.
    pub fn by_operator(&self) -> Vec<(String, i64)> {
        let mut sums: BTreeMap<String, i64> = BTreeMap::new();
        for ((_, name), n) in self.0.lock().map(|m| m.clone()).unwrap_or_default() {
            *sums.entry(name).or_default() += n;
        }
        let mut out: Vec<(String, i64)> = sums.into_iter().collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        out
    }
}

/// Binds the logs on `worker` that count its arrangements' updates into `sizes` (and
/// the gauge); call before building the dataflow, whose operators take their loggers
/// as they are built, and [`after_build`] after.
pub(crate) fn before_build(worker: &mut Worker, sizes: ArrangedUpdates) {
    let names: Rc<RefCell<BTreeMap<usize, String>>> = Rc::default();
    let Some(mut register) = worker.log_register() else {
        return;
    };
    let sink = Rc::clone(&names);
    register.insert::<TimelyEventBuilder, _>("timely", move |_time, data| {
        if let Some(events) = data {
            for (_, event) in events.iter() {
                if let TimelyEvent::Operates(op) = event {
                    sink.borrow_mut().insert(op.id, op.name.clone());
                }
            }
        }
    });
    let index = worker.index();
    let worker_label = index.to_string();
    let mut held: BTreeMap<usize, i64> = BTreeMap::new();
    register.insert::<DifferentialEventBuilder, _>("differential/arrange", move |_time, data| {
        let Some(events) = data else { return };
        let mut touched = Vec::new();
        for (_, event) in events.iter() {
            let (operator, change) = match event {
                DifferentialEvent::Batch(b) => (b.operator, b.length as i64),
                DifferentialEvent::Merge(m) => match m.complete {
                    Some(n) => (m.operator, n as i64 - (m.length1 + m.length2) as i64),
                    None => continue,
                },
                DifferentialEvent::Drop(d) => (d.operator, -(d.length as i64)),
                _ => continue,
            };
            *held.entry(operator).or_default() += change;
            touched.push(operator);
        }
        touched.sort_unstable();
        touched.dedup();
        let names = names.borrow();
        let Ok(mut sizes) = sizes.0.lock() else {
            return;
        };
        for operator in touched {
            let label = format!(
                "{} #{operator}",
                names.get(&operator).map_or("operator", String::as_str)
            );
            let n = held.get(&operator).copied().unwrap_or(0);
            metrics::gauge!(
                "crmpulse_pipeline_arranged_updates",
                "operator" => label.clone(),
                "worker" => worker_label.clone()
            )
            .set(n as f64);
            sizes.insert((index, label), n);
        }
    });
}

/// Unbinds the `timely` log once the dataflow is built (dropping its logger flushes the
/// operator names it buffered).
pub(crate) fn after_build(worker: &mut Worker) {
    if let Some(mut register) = worker.log_register() {
        drop(register.remove("timely"));
    }
}

#[cfg(test)]
mod tests {
    use crate::{Pipeline, PipelineConfig};
    use schemas::Event;
    use schemas::event::{AgentStatus, Payload};
    use std::time::{Duration, Instant};

    /// Each agent status change is one update of the presence fold's input
    /// arrangement, by (agent, day): 3 agents × 40 changes over 4 days are 120 of them.
    #[test]
    fn the_presence_folds_input_holds_one_update_per_status_change() {
        let config = PipelineConfig {
            arrangement_sizes: true,
            ..PipelineConfig::default()
        };
        let mut pipeline = Pipeline::start(&config, |_| {}).unwrap();
        let t0 = 20_416 * 86_400_000i64; // a UTC midnight
        let events: Vec<Event> = (0..120)
            .map(|i| Event {
                event_id: format!("s{i}"),
                account_id: 1,
                occurred_at_ms: t0 + i * 2_880_000,
                payload: Payload::AgentStatusChanged {
                    agent_id: format!("agent{}", i % 3),
                    team_id: None,
                    status: if i % 2 == 0 {
                        AgentStatus::Online
                    } else {
                        AgentStatus::Away
                    },
                },
            })
            .collect();
        pipeline.push_at(10, events).unwrap();
        pipeline.advance_to(20).unwrap();
        let arranged = pipeline.arranged();
        let held = |name: &str| {
            arranged
                .by_operator()
                .into_iter()
                .filter(|(operator, _)| operator.starts_with(name))
                .map(|(_, n)| n)
                .sum::<i64>()
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while held("Arrange: AgentPresenceDay #") != 120 && Instant::now() < deadline {
            pipeline.advance_to(pipeline.time() + 1).unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(held("Arrange: AgentPresenceDay #"), 120);
        // The day fold's output: one summary per agent and day (4 days × 3 agents).
        assert_eq!(held("AgentPresenceDay #"), 12);
        pipeline.finish();
    }
}
