//! The served dashboard equals the reference (`crmpulse-reference`, recomputed from
//! `docs/metrics.md` alone) for generated event sets: every value the reference
//! produces, at the same JSON path of the product's body.
//!
//! Each case runs the real pipeline in-process (two workers, events redelivered,
//! shuffled and pushed in several batches), applies every released batch to a view
//! store, and asks every section of every account a set of queries (filters,
//! granularities, dates and off-grid instants, ranges over a DST change, the default
//! range, refused ranges). Nothing reads the wall clock: the pipeline's times, its
//! final progress and the server's "now" are fixed by the case.
//!
//! Knobs (environment): `REFERENCE_CASES` (default 64), `REFERENCE_SEED` (a fixed
//! seed by default, so a run is reproducible), `REFERENCE_SHRINK` (shrink iterations,
//! default 200), `REFERENCE_SECTIONS=kpi,customer-load` (compare only those),
//! `REFERENCE_KNOWN=skip` (local only: look past the known classes of issue 13) and
//! `REFERENCE_IGNORE=.path.part,…` (local only, with `REFERENCE_KNOWN=skip`: ignore
//! paths containing these); the default compares everything.

mod support;

use std::collections::BTreeMap;

use crmpulse_reference::{Input, Query, Settings};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use query_api::sections::{self, Params, conversation_effectiveness::Granularity};
use query_api::{AccountSettings, AccountsConfig, AppState};
use schemas::event::Event;
use serde_json::Value;
use support::{Case, Materialize, ZONES};

const SECTIONS: &[&str] = &[
    "kpi",
    "conversation-effectiveness",
    "whatsapp-performance",
    "customer-load",
    "agent-productivity",
    "automation-impact",
    "business-impact",
];

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn skip_known() -> bool {
    std::env::var("REFERENCE_KNOWN").is_ok_and(|v| v == "skip")
}

fn sections_compared() -> Vec<&'static str> {
    match std::env::var("REFERENCE_SECTIONS") {
        Ok(list) if !list.is_empty() => SECTIONS
            .iter()
            .copied()
            .filter(|s| list.split(',').any(|x| x.trim() == *s))
            .collect(),
        _ => SECTIONS.to_vec(),
    }
}

/// The reference's settings and the product's for account `i` of `case`.
fn settings(case: &Case, i: usize) -> (Settings, AccountSettings) {
    let spec = &case.accounts[i];
    let tz = ZONES[i].1;
    let fees: BTreeMap<String, i64> = if spec.fees {
        [("whatsapp".to_string(), 40), ("sms".to_string(), 7)].into()
    } else {
        BTreeMap::new()
    };
    (
        Settings {
            timezone: tz,
            sla_first_response_s: spec.sla_first_response_s,
            whatsapp_delivery_alert_below: spec.alert_below,
            agent_hourly_cost_minor: spec.agent_hourly_cost_minor,
            conversation_fee_minor: fees.clone(),
            cost_currency: spec.currency.into(),
        },
        AccountSettings {
            timezone: tz,
            sla_first_response_s: spec.sla_first_response_s,
            whatsapp_delivery_alert_below: spec.alert_below,
            agent_hourly_cost_minor: spec.agent_hourly_cost_minor,
            conversation_fee_minor: fees,
            cost_currency: spec.currency.into(),
        },
    )
}

/// The real product after every delivery of `case`: pipeline (two workers) → view
/// store → query state with the case's settings and clock.
fn product(
    case: &Case,
    batches: &[Vec<Event>],
    now_ms: i64,
    horizon_ms: Option<i64>,
) -> (AppState, Vec<u64>) {
    let mut config = AccountsConfig {
        defaults: settings(case, 0).1,
        accounts: BTreeMap::new(),
    };
    for (i, (id, _)) in ZONES.iter().enumerate().skip(1) {
        config.accounts.insert(id.to_string(), settings(case, i).1);
    }
    let (store, refused) = support::store_after_with(batches, case.progress_ms(), horizon_ms);
    (support::app(store, config, now_ms), refused)
}

/// One difference: path, reference value, product value.
type Diff = (String, String, String);

fn is_known_skip(path: &str, query: &Query) -> bool {
    // Local exploration: `REFERENCE_IGNORE=.messages_today.previous,...`.
    if let Ok(list) = std::env::var("REFERENCE_IGNORE")
        && list.split(',').any(|p| !p.is_empty() && path.contains(p))
    {
        return true;
    }
    // Known class 3: waiting_now under an agent filter.
    if query.agent_id.is_some() && path.contains("waiting_now") {
        return true;
    }
    // Known class 4: resolve events under a team filter.
    if query.team_id.is_some()
        && (path.contains("resolve_events")
            || (path.contains("agent_ranking.agents") && path.contains(".resol")))
    {
        return true;
    }
    // Known classes 5 and 6 are taken out by `look_past_known`. (⌈q·n⌉ in floating
    // point equals the exact rank for every n below 200 with q = 0.5 and 0.9, so the
    // percentiles are compared.)
    false
}

/// Local only (`REFERENCE_KNOWN=skip`): takes out of the reference body what the known
/// classes 5 and 6 change, and puts agent rows of both bodies in agent-id order (the
/// score decides their order): agent scores, levels and ranks; the forecast's `weeks`,
/// and `expected` unless all four weeks have history.
fn look_past_known(want: &mut Value, got: &mut Value) {
    let by_agent = |v: &mut Value| {
        if let Some(rows) = v.as_array_mut() {
            rows.sort_by(|a, b| a["agent_id"].as_str().cmp(&b["agent_id"].as_str()));
        }
    };
    for path in ["/agent_ranking/agents", "/agents"] {
        if let Some(rows) = want.pointer_mut(path) {
            by_agent(rows);
            for row in rows.as_array_mut().into_iter().flatten() {
                if let Some(row) = row.as_object_mut() {
                    for k in ["score", "level", "rank", "productivity_score"] {
                        row.remove(k);
                    }
                }
            }
        }
        if let Some(rows) = got.pointer_mut(path) {
            by_agent(rows);
        }
    }
    if let Some(points) = want
        .pointer_mut("/forecast/points")
        .and_then(Value::as_array_mut)
    {
        for p in points.iter_mut().filter_map(Value::as_object_mut) {
            if p.remove("weeks").and_then(|w| w.as_i64()) != Some(4) {
                p.remove("expected");
            }
        }
    }
}

/// Every leaf of `r` (the reference) must equal `p` (the product) at the same path.
/// Returns how many leaves were compared.
fn compare(path: &str, r: &Value, p: Option<&Value>, ctx: &Query, out: &mut Vec<Diff>) -> usize {
    let skip = skip_known();
    let differ = |out: &mut Vec<Diff>, p: Option<&Value>| {
        if skip && is_known_skip(path, ctx) {
            return;
        }
        out.push((
            path.to_string(),
            r.to_string(),
            p.map_or("(missing)".into(), Value::to_string),
        ));
    };
    match r {
        Value::Object(map) => {
            let mut n = 0;
            for (k, v) in map {
                let child = p.and_then(|p| p.get(k));
                n += compare(&format!("{path}.{k}"), v, child, ctx, out);
            }
            n
        }
        Value::Array(items) => {
            let theirs = p.and_then(Value::as_array);
            match theirs {
                Some(theirs)
                    if theirs.len() != items.len() && !(skip && is_known_skip(path, ctx)) =>
                {
                    out.push((
                        format!("{path}.len()"),
                        items.len().to_string(),
                        theirs.len().to_string(),
                    ));
                }
                None => {
                    differ(out, p);
                    return 1;
                }
                _ => {}
            }
            let mut n = 1;
            for (i, v) in items.iter().enumerate() {
                let child = theirs.and_then(|t| t.get(i));
                n += compare(&format!("{path}[{i}]"), v, child, ctx, out);
            }
            n
        }
        Value::Number(a) => {
            match p.and_then(Value::as_f64) {
                Some(b) if (a.as_f64().unwrap() - b).abs() <= 1e-9 => {}
                _ => differ(out, p),
            }
            1
        }
        leaf => {
            if p != Some(leaf) {
                differ(out, p);
            }
            1
        }
    }
}

fn params(q: &Query) -> Params {
    Params {
        account_id: q.account_id,
        from: q.from.clone(),
        to: q.to.clone(),
        channel: q.channel,
        inbox_id: q.inbox_id.clone(),
        agent_id: q.agent_id.clone(),
        team_id: q.team_id.clone(),
        granularity: q.granularity.as_deref().and_then(Granularity::parse),
    }
}

/// The account's events in event-time order, one line each, for a failure report.
fn listing(events: &[Event], account: u64) -> String {
    let mut evs: Vec<&Event> = events.iter().filter(|e| e.account_id == account).collect();
    evs.sort_by_key(|e| e.occurred_at_ms);
    evs.iter()
        .map(|e| format!("  {}", serde_json::to_string(e).unwrap()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The length of the range the reference resolves for these bounds (ms).
fn section_len(case: &Case, from: &Option<String>, to: &Option<String>, tz: chrono_tz::Tz) -> i64 {
    let settings = Settings {
        timezone: tz,
        ..Settings::default()
    };
    let query = Query {
        from: from.clone(),
        to: to.clone(),
        ..Query::default()
    };
    let input = Input {
        events: &[],
        settings: &settings,
        query: &query,
        progress_ms: case.progress_ms(),
        now_ms: case.now_ms(),
    };
    crmpulse_reference::resolve_range(&input).map_or(0, |r| r.to - r.from)
}

/// Hours up to two days, days up to 62 days, weeks beyond (docs/metrics.md).
fn default_granularity(len: i64) -> String {
    let day = 86_400_000;
    if len <= 2 * day {
        "hour".into()
    } else if len <= 62 * day {
        "day".into()
    } else {
        "week".into()
    }
}

/// Runs `case` through the product and the reference and returns the failure report,
/// if any.
/// Compares every section of `case`; with a lateness horizon, the reference sees the
/// delivered events its own rule does not refuse, and the product must refuse exactly
/// those. Returns how many events were refused.
fn check(case: &Case, horizon_ms: Option<i64>) -> Result<usize, String> {
    let opts = Materialize {
        no_agent_before_handover: skip_known(),
        open_first: std::env::var_os("REFERENCE_OPEN_FIRST").is_some(),
    };
    let events = support::events(case, opts);
    let batches = support::deliveries(case, &events);
    let mut delivered: Vec<Event> = batches.iter().flatten().cloned().collect();
    let now_ms = case.now_ms();
    let (app, refused) = product(case, &batches, now_ms, horizon_ms);
    if let Some(h) = horizon_ms {
        let want = crmpulse_reference::finalization::refused(&delivered, h);
        let want: Vec<u64> = want.iter().map(|&i| i as u64).collect();
        if want != refused {
            return Err(format!(
                "refused events differ with a {h} ms horizon: reference {want:?}, product {refused:?}"
            ));
        }
        let mut k = 0;
        delivered.retain(|_| {
            k += 1;
            !want.contains(&(k - 1))
        });
    }
    let refused = refused.len();
    let sections = sections_compared();
    let mut failures = Vec::new();
    let mut leaves = 0usize;
    let mut bodies = 0usize;
    for (i, (account, tz)) in ZONES.iter().enumerate() {
        let (settings, _) = settings(case, i);
        for spec in &case.queries {
            let (mut from, mut to) = support::bounds(case, &spec.range, *tz);
            if skip_known() {
                // Known class 2: `to` rounded up. Put instants on the grid.
                let on_grid = |b: Option<String>| {
                    b.map(|s| match chrono::DateTime::parse_from_rfc3339(&s) {
                        Ok(t) => support::instant(
                            crmpulse_reference::floor_quarter(t.timestamp_millis()),
                            0,
                        ),
                        Err(_) => s,
                    })
                };
                from = on_grid(from);
                to = on_grid(to);
            }
            let mut granularity = spec.granularity.map(String::from);
            if granularity.is_none() && std::env::var_os("REFERENCE_EXPLICIT_GRANULARITY").is_some()
            {
                // Local only: ask for the reference's default explicitly, to look past a
                // difference in the default rule.
                granularity = Some(default_granularity(section_len(case, &from, &to, *tz)));
            }
            let query = Query {
                account_id: *account,
                from,
                to,
                channel: spec.channel,
                inbox_id: spec.inbox.map(Into::into),
                agent_id: spec.agent.map(Into::into),
                team_id: spec.team.map(Into::into),
                granularity,
            };
            for section in &sections {
                let got = sections::compute(&app, section, &params(&query), now_ms);
                let progress_ms = match &got {
                    Ok(body) => body["progress"].as_i64().unwrap_or(case.progress_ms()),
                    Err(_) => case.progress_ms(),
                };
                let input = Input {
                    events: &delivered,
                    settings: &settings,
                    query: &query,
                    progress_ms,
                    now_ms,
                };
                let want = crmpulse_reference::section(section, &input);
                let mut diffs = Vec::new();
                match (&want, &got) {
                    (Err(_), Err(_)) => continue,
                    (Err(e), Ok(_)) => {
                        diffs.push(("(error)".into(), e.clone(), "a body".into()));
                    }
                    (Ok(_), Err(e)) => {
                        diffs.push(("(error)".into(), "a body".into(), e.to_string()));
                    }
                    (Ok(w), Ok(g)) => {
                        let (mut w, mut g) = (w.clone(), g.clone());
                        if skip_known() {
                            look_past_known(&mut w, &mut g);
                        }
                        let (w, g) = (&w, &g);
                        let n = compare("", w, Some(g), &query, &mut diffs);
                        if n == 0 || w.is_null() {
                            diffs.push((
                                "(nothing compared)".into(),
                                w.to_string(),
                                "the reference produced no values".into(),
                            ));
                        }
                        leaves += n;
                        bodies += 1;
                    }
                }
                if !diffs.is_empty() {
                    let shown: Vec<String> = diffs
                        .iter()
                        .take(20)
                        .map(|(p, r, g)| format!("    {p}: reference {r}, product {g}"))
                        .collect();
                    failures.push(format!(
                        "account {account} ({tz}, target {} s), section {section}, query {:?}, progress {}, now {}:\n{}{}",
                        settings.sla_first_response_s,
                        query,
                        crmpulse_reference::rfc3339(progress_ms),
                        crmpulse_reference::rfc3339(now_ms),
                        shown.join("\n"),
                        if diffs.len() > 20 {
                            format!("\n    … {} more", diffs.len() - 20)
                        } else {
                            String::new()
                        }
                    ));
                }
            }
        }
    }
    if failures.is_empty() {
        // Every body compared produced leaves (checked per body above); a case whose
        // every range is refused compares only errors.
        assert!(leaves > 0 || bodies == 0, "the comparison compared nothing");
        return Ok(refused);
    }
    let accounts: Vec<u64> = ZONES.iter().map(|z| z.0).collect();
    let mut report = format!(
        "{} differing bodies (first 5 below); seed REFERENCE_SEED={}, main day {}, progress {}\n\n{}",
        failures.len(),
        env_u64("REFERENCE_SEED", 13),
        case.day(),
        crmpulse_reference::rfc3339(case.progress_ms()),
        failures
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n\n"),
    );
    for a in accounts {
        let l = listing(&events, a);
        if !l.is_empty()
            && failures
                .iter()
                .take(5)
                .any(|f| f.starts_with(&format!("account {a} ")))
        {
            report.push_str(&format!("\n\nevents of account {a}:\n{l}"));
        }
    }
    Err(report)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: u32::try_from(env_u64("REFERENCE_CASES", 64)).unwrap(),
        max_shrink_iters: u32::try_from(env_u64("REFERENCE_SHRINK", 200)).unwrap(),
        rng_seed: RngSeed::Fixed(env_u64("REFERENCE_SEED", 13)),
        // The seed is fixed: a run reproduces without a regressions file.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn every_section_equals_the_reference(case in support::case()) {
        if let Err(report) = check(&case, None) {
            prop_assert!(false, "{}", report);
        }
    }
}

/// The same comparison with a lateness horizon short enough (10 or 30 minutes, 1, 6 or
/// 30 hours) that
/// entities finalize within a case, and the shuffled deliveries bring events for
/// final entities: the product must refuse exactly the events the reference's own
/// rule refuses, and every section must equal the reference over the rest (a final
/// entity's numbers stay as they were when its state left the pipeline).
#[test]
fn with_a_lateness_horizon_every_section_equals_the_reference_over_the_accepted_events() {
    use proptest::test_runner::{TestCaseError, TestRunner};
    const H: i64 = 3_600_000;
    let refused = std::cell::Cell::new(0usize);
    let mut runner = TestRunner::new(config());
    let strategy = (
        support::case(),
        proptest::sample::select(vec![H / 6, H / 2, H, 6 * H, 30 * H]),
    );
    let result = runner.run(&strategy, |(case, horizon)| {
        match check(&case, Some(horizon)) {
            Ok(n) => {
                refused.set(refused.get() + n);
                Ok(())
            }
            Err(report) => Err(TestCaseError::fail(report)),
        }
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    assert!(
        refused.get() > 0,
        "no case refused an event: the horizon was never exercised"
    );
    eprintln!("events refused over every case: {}", refused.get());
}
