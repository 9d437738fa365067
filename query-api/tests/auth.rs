//! Who may see what, over every dashboard route × every role × another account's
//! token: allowed or denied (401/403), and exactly which agents each body names.
//! Live: an agent's socket never receives another agent's identity, in the snapshot
//! or in any delta.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::DateTime;
use crmpulse_query_api::auth::{Auth, Claims, Limits, Principal, Role, Signer, Verifier};
use crmpulse_query_api::sections::SECTIONS;
use crmpulse_query_api::{AppState, LiveConfig, ViewStore, live, router};
use schemas::Clock;
use schemas::event::{AgentStatus, Channel};
use schemas::metrics::{Fact, MetricBatch};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tower::ServiceExt;

const SECRET: &[u8] = b"auth-matrix-secret-0123456789abcdef";
const DAY: &str = "from=2026-11-24&to=2026-11-25";

fn ms(s: &str) -> i64 {
    DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
}

/// Agent `agent` of `team` in `account`: online now, and one conversation handled and
/// answered on 2026-11-24.
fn agent_facts(account_id: u64, agent: &str, team: &str, conv: &str) -> Vec<(Fact, i64)> {
    let at = ms("2026-11-24T10:00:00Z");
    vec![
        (
            Fact::AgentCurrentStatus {
                account_id,
                agent_id: agent.into(),
                team_id: Some(team.into()),
                status: AgentStatus::Online,
                since_ms: at,
            },
            1,
        ),
        (
            Fact::AgentHandled {
                account_id,
                bucket: at,
                agent_id: agent.into(),
                team_id: Some(team.into()),
                conversation_id: conv.into(),
                channel: Channel::Whatsapp,
                inbox_id: "i1".into(),
            },
            1,
        ),
        (
            Fact::FirstResponse {
                account_id,
                bucket: at,
                seconds: 90,
                channel: Channel::Whatsapp,
                inbox_id: "i1".into(),
                agent_id: Some(agent.into()),
                team_id: Some(team.into()),
            },
            1,
        ),
    ]
}

/// Account 1: a1 (team t1), a2 (team t2). Account 2: b1 (team t1).
fn store() -> Arc<ViewStore> {
    let store = Arc::new(ViewStore::default());
    let mut updates = agent_facts(1, "a1", "t1", "c1");
    updates.extend(agent_facts(1, "a2", "t2", "c2"));
    updates.extend(agent_facts(2, "b1", "t1", "c9"));
    store.apply(MetricBatch {
        progress: ms("2026-11-24T12:00:00Z") as u64,
        events_consumed: 9,
        updates,
    });
    store
}

/// "Now" for these tests: after the store's facts (12:00), on their day. Tokens are
/// issued and checked on this clock, never the machine's.
fn clock() -> Clock {
    Clock::starting_at(ms("2026-11-24T12:30:00Z"))
}

fn auth() -> Arc<Auth> {
    Arc::new(Auth::new(
        Verifier::hs256(SECRET).unwrap().with_clock(clock()),
        Limits {
            requests_per_s: 10_000,
            burst: 10_000,
            ..Limits::default()
        },
    ))
}

fn secured(store: Arc<ViewStore>) -> AppState {
    let mut state = app_state(store);
    state.auth = Some(auth());
    state
}

fn app_state(store: Arc<ViewStore>) -> AppState {
    let mut state = AppState::new(store);
    state.clock = clock();
    state
}

fn token_with(secret: &[u8], account: u64, role: Role, ttl_s: i64) -> String {
    let (teams, agent) = match role {
        Role::Supervisor => (vec!["t1".to_owned()], None),
        Role::Agent => (vec!["t1".to_owned()], Some("a1".to_owned())),
        _ => (vec![], None),
    };
    let mut claims = Claims::new(
        format!("{}-{account}", role.as_str()),
        account,
        role,
        teams,
        agent,
        Duration::from_secs(ttl_s.unsigned_abs()),
        &clock(),
    );
    if ttl_s < 0 {
        // Expired an hour ago on the test clock.
        claims.exp = clock().now_s() - 3_600;
    }
    Signer::hs256(secret).unwrap().sign(&claims).unwrap()
}

fn token(account: u64, role: Role) -> String {
    token_with(SECRET, account, role, 600)
}

async fn get(app: &axum::Router, uri: &str, token: Option<&str>) -> (StatusCode, Value) {
    let mut req = Request::get(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, body)
}

/// Every `agent_id` string anywhere in a body.
fn agents(v: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    fn walk(v: &Value, out: &mut BTreeSet<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(a)) = m.get("agent_id") {
                    out.insert(a.clone());
                }
                m.values().for_each(|x| walk(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    walk(v, &mut out);
    out
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn every_section_for_every_role_shows_exactly_what_the_role_may_see() {
    let store = store();
    let open = router(app_state(Arc::clone(&store)));
    let app = router(secured(Arc::clone(&store)));
    for section in SECTIONS {
        let uri = format!("/api/dashboard/{section}?{DAY}");
        // The reference: everything account 1 holds, as an open server computes it.
        let (_, full) = get(&open, &uri, None).await;
        let all = agents(&full);
        for role in Role::ALL {
            let (status, body) = get(&app, &uri, Some(&token(1, role))).await;
            assert_eq!(status, StatusCode::OK, "{section} as {role:?}: {body}");
            assert_eq!(body["account_id"], 1, "{section} as {role:?}");
            let expected: BTreeSet<String> = match role {
                Role::Admin | Role::Analyst => all.clone(),
                // a1 is the agent's own id and the only agent of the supervisor's t1.
                Role::Supervisor | Role::Agent => {
                    all.intersection(&set(&["a1"])).cloned().collect()
                }
            };
            assert_eq!(agents(&body), expected, "{section} as {role:?}");
            if matches!(role, Role::Admin | Role::Analyst) {
                assert_eq!(body, full, "{section} as {role:?} equals the full body");
            }
        }
        // Sections with agent rows name both agents for an admin.
        if matches!(
            *section,
            "agent-productivity" | "conversation-effectiveness"
        ) {
            assert_eq!(all, set(&["a1", "a2"]), "{section}");
        }

        // Another account's token reads its own account, never account 1.
        let (status, body) = get(&app, &uri, Some(&token(2, Role::Admin))).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["account_id"], 2);
        let text = body.to_string();
        assert!(
            !text.contains("\"a1\"") && !text.contains("\"a2\""),
            "{section}: {text}"
        );
        let (status, body) = get(
            &app,
            &format!("{uri}&account_id=1"),
            Some(&token(2, Role::Admin)),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{section}: {body}");
        assert_eq!(body["error"]["code"], "forbidden");

        // No token, an expired one, one signed by another key, garbage.
        let (status, body) = get(&app, &uri, None).await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (StatusCode::UNAUTHORIZED, &json!("unauthorized"))
        );
        let expired = token_with(SECRET, 1, Role::Admin, -1);
        let (status, body) = get(&app, &uri, Some(&expired)).await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (StatusCode::UNAUTHORIZED, &json!("token_expired"))
        );
        let forged = token_with(b"someone else's secret, 32 bytes+", 1, Role::Admin, 600);
        let (status, _) = get(&app, &uri, Some(&forged)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _) = get(&app, &uri, Some("not-a-token")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
}

#[test]
fn rs256_tokens_verify_against_any_configured_public_key_and_nothing_else() {
    let fixture = |name: &str| {
        std::fs::read(format!(
            "{}/tests/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    };
    let claims = Claims::new(
        "ada",
        1,
        Role::Analyst,
        vec![],
        None,
        Duration::from_secs(60),
        &clock(),
    );
    let token = Signer::rs256(&fixture("rs256-test-private.pem"))
        .unwrap()
        .sign(&claims)
        .unwrap();
    // Rotation: the old and the new public key are both configured.
    let both = Verifier::rs256(&[
        fixture("rs256-other-public.pem"),
        fixture("rs256-test-public.pem"),
    ])
    .unwrap()
    .with_clock(clock());
    assert_eq!(both.verify(&token).unwrap(), claims);
    let other = Verifier::rs256(&[fixture("rs256-other-public.pem")]).unwrap();
    assert_eq!(
        other.verify(&token),
        Err(crmpulse_query_api::auth::TokenError::BadSignature)
    );
    // Algorithm confusion: an HS256 token signed with the public key's bytes is refused.
    let forged = Signer::hs256(&fixture("rs256-test-public.pem"))
        .unwrap()
        .sign(&claims)
        .unwrap();
    assert!(both.verify(&forged).is_err());
    assert!(Verifier::rs256(&[b"not a key".to_vec()]).is_err());
}

#[tokio::test]
async fn filters_stay_within_the_role_and_other_routes_are_guarded() {
    let app = router(secured(store()));
    let agent = token(1, Role::Agent);
    let supervisor = token(1, Role::Supervisor);
    let base = format!("/api/dashboard/agent-productivity?{DAY}");
    let cases = [
        (&agent, "&agent_id=a2", StatusCode::FORBIDDEN),
        (&agent, "&agent_id=a1", StatusCode::OK),
        (&agent, "&team_id=t2", StatusCode::FORBIDDEN),
        (&supervisor, "&team_id=t2", StatusCode::FORBIDDEN),
        (&supervisor, "&team_id=t1", StatusCode::OK),
    ];
    for (t, filter, want) in cases {
        let (status, body) = get(&app, &format!("{base}{filter}"), Some(t)).await;
        assert_eq!(status, want, "{filter}: {body}");
    }

    // /api/me: the caller's own claims.
    for role in Role::ALL {
        let (status, me) = get(&app, "/api/me", Some(&token(1, role))).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            (me["role"].as_str(), me["account_id"].as_u64()),
            (Some(role.as_str()), Some(1))
        );
    }
    assert_eq!(get(&app, "/api/me", None).await.0, StatusCode::UNAUTHORIZED);

    // /metrics: server-wide figures, for admins only.
    for role in Role::ALL {
        let want = if role == Role::Admin {
            StatusCode::OK
        } else {
            StatusCode::FORBIDDEN
        };
        let res = app
            .clone()
            .oneshot(
                Request::get("/metrics")
                    .header("authorization", format!("Bearer {}", token(1, role)))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(res.status(), want, "{role:?}");
    }
    assert_eq!(
        get(&app, "/metrics", None).await.0,
        StatusCode::UNAUTHORIZED
    );

    // Public: liveness, readiness and the API description carry no tenant data.
    assert_eq!(get(&app, "/healthz", None).await.0, StatusCode::OK);
    assert_eq!(get(&app, "/readyz", None).await.0, StatusCode::OK);
    assert_eq!(get(&app, "/api/openapi.json", None).await.0, StatusCode::OK);

    // Security headers on every response.
    let res = app
        .clone()
        .oneshot(Request::get("/api/me").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let h = res.headers();
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["cache-control"], "no-store");
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert!(
        h.get("access-control-allow-origin").is_none(),
        "CORS is off by default"
    );
}

#[tokio::test]
async fn the_rate_limit_answers_429_with_retry_after() {
    let mut state = app_state(store());
    state.auth = Some(Arc::new(Auth::new(
        Verifier::hs256(SECRET).unwrap().with_clock(clock()),
        Limits {
            requests_per_s: 1,
            burst: 2,
            ..Limits::default()
        },
    )));
    let app = router(state);
    let t = token(1, Role::Analyst);
    let statuses: Vec<StatusCode> = futures_util::future::join_all((0..3).map(|_| {
        let app = app.clone();
        let t = t.clone();
        async move { get(&app, "/api/me", Some(&t)).await.0 }
    }))
    .await;
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 2);
    let res = app
        .oneshot(
            Request::get("/api/me")
                .header("authorization", format!("Bearer {t}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        res.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    // Another token has its own budget.
    let other = router(secured(store()));
    assert_eq!(
        get(&other, "/api/me", Some(&token(1, Role::Admin))).await.0,
        StatusCode::OK
    );
}

/// Drives one live connection over channels; returns the frames sent to the client.
struct Conn {
    to_server: mpsc::UnboundedSender<String>,
    from_server: mpsc::UnboundedReceiver<String>,
    done: tokio::task::JoinHandle<Option<live::Close>>,
}

fn connect(state: AppState) -> Conn {
    let (to_server, server_in) = mpsc::unbounded_channel::<String>();
    let (server_out, from_server) = mpsc::unbounded_channel::<String>();
    let sink = Box::pin(futures_util::sink::unfold(
        server_out,
        |tx, frame: String| async move {
            tx.send(frame).map_err(|_| ())?;
            Ok::<_, ()>(tx)
        },
    ));
    let stream = UnboundedReceiverStream::new(server_in);
    let done = tokio::spawn(live::serve(state, sink, stream));
    Conn {
        to_server,
        from_server,
        done,
    }
}

impl Conn {
    fn send(&self, v: Value) {
        self.to_server.send(v.to_string()).unwrap();
    }

    async fn next(&mut self) -> Value {
        let text = tokio::time::timeout(Duration::from_secs(10), self.from_server.recv())
            .await
            .expect("a frame within 10 s")
            .expect("the connection is open");
        serde_json::from_str(&text).unwrap()
    }
}

#[tokio::test]
async fn an_agents_socket_never_receives_another_agents_identity() {
    let store = store();
    let mut state = secured(Arc::clone(&store));
    state.live = LiveConfig {
        coalesce: Duration::from_millis(20),
        ..LiveConfig::default()
    };

    // Subscribing before authenticating closes the connection with 4401, and nothing
    // else is sent.
    let anonymous = connect(state.clone());
    anonymous.send(json!({"op": "subscribe", "id": "x", "section": "kpi", "params": {}}));
    let (frames, close) = drain(anonymous).await;
    assert!(frames.is_empty(), "{frames:?}");
    assert_eq!(close.expect("a close frame").code, live::CLOSE_UNAUTHORIZED);

    let mut conn = connect(state);
    conn.send(json!({"op": "auth", "token": token(1, Role::Agent)}));
    let hello = conn.next().await;
    assert_eq!(
        (hello["type"].as_str(), hello["role"].as_str()),
        (Some("authenticated"), Some("agent"))
    );
    let mut data = std::collections::HashMap::new();
    for section in ["agent-productivity", "conversation-effectiveness"] {
        conn.send(json!({"op": "subscribe", "id": section, "section": section, "params": {"from": "2026-11-24", "to": "2026-11-25"}}));
        let snap = conn.next().await;
        assert_eq!(snap["type"], "snapshot", "{snap}");
        assert_eq!(agents(&snap["data"]), set(&["a1"]), "{section}");
        data.insert(section.to_owned(), snap["data"].clone());
    }
    // A subscription naming another agent is refused.
    conn.send(json!({"op": "subscribe", "id": "spy", "section": "agent-productivity", "params": {"agent_id": "a2"}}));
    let err = conn.next().await;
    assert_eq!(
        (err["id"].as_str(), err["code"].as_str()),
        (Some("spy"), Some("forbidden"))
    );

    // New work by a2 and a new agent a3 (team t1 too), then by a1.
    let mut updates = agent_facts(1, "a3", "t1", "c3");
    updates.push(agent_facts(1, "a2", "t2", "c4").remove(1));
    updates.push(agent_facts(1, "a1", "t1", "c5").remove(1));
    store.apply(MetricBatch {
        progress: ms("2026-11-24T13:00:00Z") as u64,
        events_consumed: 12,
        updates,
    });
    let mut seen = 0;
    while seen < 2 {
        let frame = conn.next().await;
        if frame["type"] != "delta" {
            continue;
        }
        seen += 1;
        let text = frame.to_string();
        assert!(!text.contains("a2") && !text.contains("a3"), "{text}");
        let id = frame["id"].as_str().unwrap().to_owned();
        let patch: json_patch::Patch = serde_json::from_value(frame["patch"].clone()).unwrap();
        let body = data.get_mut(&id).unwrap();
        json_patch::patch(body, &patch).unwrap();
        assert_eq!(agents(body), set(&["a1"]), "{id}");
    }
}

proptest::proptest! {
    /// Whatever arrives as a bearer token is refused or verified, never a panic; and
    /// a valid token with any one character changed is refused.
    #[test]
    fn arbitrary_and_tampered_tokens_are_refused(
        junk in ".{0,300}",
        at in proptest::prelude::any::<proptest::sample::Index>(),
        c in proptest::char::range('!', '~'),
    ) {
        let verifier = Verifier::hs256(SECRET).unwrap().with_clock(clock());
        let _ = verifier.verify(&junk);
        let good = token(1, Role::Admin);
        let mut chars: Vec<char> = good.chars().collect();
        let k = at.index(chars.len());
        proptest::prop_assume!(chars[k] != c);
        chars[k] = c;
        let tampered: String = chars.into_iter().collect();
        // Changing base64url padding bits of the last character may decode to the same
        // bytes; anything else must fail.
        if let Ok(claims) = verifier.verify(&tampered) {
            proptest::prop_assert_eq!(claims, verifier.verify(&good).unwrap());
        }
    }
}

#[tokio::test]
async fn subscribers_of_one_view_share_one_computation_and_keep_their_own_scope() {
    let store = store();
    let mut state = secured(Arc::clone(&store));
    state.live = LiveConfig {
        coalesce: Duration::from_millis(20),
        ..LiveConfig::default()
    };
    let cache = Arc::clone(state.bodies.as_ref().unwrap());
    let sub = json!({"op": "subscribe", "id": "ap", "section": "agent-productivity", "params": {"from": "2026-11-24", "to": "2026-11-25"}});
    let roles = [
        Role::Admin,
        Role::Admin,
        Role::Admin,
        Role::Supervisor,
        Role::Agent,
    ];
    let mut conns = Vec::new();
    for role in roles {
        let mut c = connect(state.clone());
        c.send(json!({"op": "auth", "token": token(1, role)}));
        assert_eq!(c.next().await["type"], "authenticated");
        c.send(sub.clone());
        assert_eq!(c.next().await["type"], "snapshot");
        conns.push(c);
    }
    let (_, misses_before) = cache.stats();
    store.apply(MetricBatch {
        progress: ms("2026-11-24T13:00:00Z") as u64,
        events_consumed: 12,
        updates: vec![agent_facts(1, "a2", "t2", "c7").remove(1)],
    });
    for (c, role) in conns.iter_mut().zip(roles) {
        let delta = loop {
            let f = c.next().await;
            if f["type"] == "delta" {
                break f;
            }
        };
        // a2's handled count changed: only those who may see a2 hear of it.
        let handled_changed = delta["patch"].to_string().contains("/handled\"");
        if role == Role::Admin {
            assert!(handled_changed, "{delta}");
        } else {
            assert!(
                !handled_changed && !delta.to_string().contains("a2"),
                "{role:?}: {delta}"
            );
        }
    }
    let (_, misses_after) = cache.stats();
    assert_eq!(
        misses_after - misses_before,
        1,
        "five subscribers, one computation"
    );
}

/// The claims `token(account, role)` carries, as a principal (for the expected bodies).
fn principal(account: u64, role: Role) -> Principal {
    let (teams, agent) = match role {
        Role::Supervisor => (vec!["t1".to_owned()], None),
        Role::Agent => (vec!["t1".to_owned()], Some("a1".to_owned())),
        _ => (vec![], None),
    };
    Principal(Claims::new(
        format!("{}-{account}", role.as_str()),
        account,
        role,
        teams,
        agent,
        Duration::from_secs(600),
        &clock(),
    ))
}

/// Every filter parameter, each with a value inside and outside what a role may name:
/// agents of the token's team (a1, b1), of another team (a2), of another account (b1
/// for account 1), teams, inboxes, channels, accounts, granularities and ranges.
const FILTERS: &[&str] = &[
    "",
    "&agent_id=a1",
    "&agent_id=a2",
    "&agent_id=b1",
    "&team_id=t1",
    "&team_id=t2",
    "&inbox_id=i1",
    "&inbox_id=i9",
    "&channel=whatsapp",
    "&channel=email",
    "&account_id=1",
    "&account_id=2",
    "&granularity=day",
    "&granularity=hour",
    "&from=2026-11-23T00:00:00Z&to=2026-11-25T00:00:00Z",
];

/// What a token of `account` with `role` may ask for with `filter` (see
/// docs/security.md): `None` for a refusal (`403`).
fn allowed(account: u64, role: Role, filter: &str) -> bool {
    let value = |name: &str| {
        filter
            .split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .map(str::to_owned)
    };
    if let Some(a) = value("account_id")
        && a != account.to_string()
    {
        return false;
    }
    if matches!(role, Role::Admin | Role::Analyst) {
        return true;
    }
    if let Some(team) = value("team_id")
        && team != "t1"
    {
        return false;
    }
    match (role, value("agent_id")) {
        (_, None) => true,
        (Role::Agent, Some(agent)) => agent == "a1",
        // A supervisor of t1 names only agents whose current team is t1 in their
        // own account: a1 in account 1, b1 in account 2.
        (_, Some(agent)) => agent == if account == 1 { "a1" } else { "b1" },
    }
}

#[tokio::test]
async fn every_filter_for_every_role_and_tenant_stays_within_the_token() {
    let store = store();
    let open = router(app_state(Arc::clone(&store)));
    let mut state = secured(Arc::clone(&store));
    state.live = LiveConfig {
        max_subscriptions: 1_000,
        ..LiveConfig::default()
    };
    let app = router(state.clone());
    for account in [1, 2] {
        let teams = store.read(|s| crmpulse_query_api::auth::agent_teams(s, account));
        for role in Role::ALL {
            let t = token(account, role);
            let who = principal(account, role);
            let mut live = connect(state.clone());
            live.send(json!({"op": "auth", "token": t}));
            assert_eq!(live.next().await["type"], "authenticated");
            for section in SECTIONS {
                for filter in FILTERS {
                    let case = format!("{section}{filter} as {role:?} of account {account}");
                    let query = if filter.contains("from=") {
                        filter[1..].to_owned()
                    } else {
                        format!("{DAY}{filter}")
                    };
                    let uri = format!("/api/dashboard/{section}?{query}");
                    let (status, body) = get(&app, &uri, Some(&t)).await;

                    // The same parameters over the live socket.
                    let params: serde_json::Map<String, Value> = query
                        .split('&')
                        .filter_map(|kv| kv.split_once('='))
                        .map(|(k, v)| (k.to_owned(), json!(v)))
                        .collect();
                    live.send(json!({"op": "subscribe", "id": case, "section": section, "params": params}));
                    let frame = loop {
                        let f = live.next().await;
                        if f["type"] != "progress" {
                            break f;
                        }
                    };
                    assert_eq!(frame["id"], json!(case), "{frame}");

                    if !allowed(account, role, filter) {
                        assert_eq!(status, StatusCode::FORBIDDEN, "{case}: {body}");
                        assert_eq!(body["error"]["code"], "forbidden", "{case}");
                        assert_eq!(
                            (frame["type"].as_str(), frame["code"].as_str()),
                            (Some("error"), Some("forbidden")),
                            "{case}: {frame}"
                        );
                        continue;
                    }
                    assert_eq!(status, StatusCode::OK, "{case}: {body}");
                    assert_eq!(body["account_id"], account, "{case}");
                    // Exactly what an open server computes for the token's account with
                    // these filters, without the rows the role may not see.
                    let reference = if filter.contains("account_id") {
                        uri.clone()
                    } else {
                        format!("{uri}&account_id={account}")
                    };
                    let (_, mut expected) = get(&open, &reference, None).await;
                    who.redact(&mut expected, &teams);
                    assert_eq!(body, expected, "{case}");
                    let visible = match (role, account) {
                        (Role::Admin | Role::Analyst, 1) => set(&["a1", "a2"]),
                        (Role::Admin | Role::Analyst, _) => set(&["b1"]),
                        (Role::Agent, _) => set(&["a1"]),
                        (Role::Supervisor, 1) => set(&["a1"]),
                        (Role::Supervisor, _) => set(&["b1"]),
                    };
                    assert!(agents(&body).is_subset(&visible), "{case}: {body}");
                    assert_eq!(frame["type"], "snapshot", "{case}: {frame}");
                    assert_eq!(frame["data"], body, "{case}: live and REST agree");
                }
            }
        }
    }
}

/// Everything a live connection received, once the server ended it.
async fn drain(mut conn: Conn) -> (Vec<String>, Option<live::Close>) {
    let close = tokio::time::timeout(Duration::from_secs(60), &mut conn.done)
        .await
        .expect("the server ends the connection")
        .unwrap();
    let mut frames = Vec::new();
    while let Ok(f) = conn.from_server.try_recv() {
        frames.push(f);
    }
    (frames, close)
}

#[tokio::test(start_paused = true)]
async fn an_unauthenticated_socket_receives_nothing_but_the_close() {
    let mut state = secured(store());
    state.live = LiveConfig {
        coalesce: Duration::from_millis(20),
        heartbeat: Duration::from_millis(50),
        ..LiveConfig::default()
    };
    let expired = token_with(SECRET, 1, Role::Admin, -1);
    let cases: [(Option<String>, u16, &str); 6] = [
        // Silence: closed at the 10 s deadline, without a heartbeat before it.
        (None, live::CLOSE_UNAUTHORIZED, "auth"),
        (Some("garbage".into()), 4400, "message"),
        (Some("{\"op\":\"dance\"}".into()), 4400, "message"),
        (
            Some(json!({"op": "subscribe", "id": "x", "section": "kpi", "params": {}}).to_string()),
            live::CLOSE_UNAUTHORIZED,
            "auth",
        ),
        (
            Some(json!({"op": "auth", "token": "not-a-token"}).to_string()),
            live::CLOSE_UNAUTHORIZED,
            "malformed token",
        ),
        (
            Some(json!({"op": "auth", "token": expired}).to_string()),
            live::CLOSE_UNAUTHORIZED,
            "expired",
        ),
    ];
    for (message, code, reason) in cases {
        let conn = connect(state.clone());
        if let Some(m) = &message {
            conn.to_server.send(m.clone()).unwrap();
        }
        let (frames, close) = drain(conn).await;
        assert_eq!(
            frames,
            Vec::<String>::new(),
            "{message:?}: nothing before auth"
        );
        let close = close.expect("a close frame");
        assert_eq!(close.code, code, "{message:?}: {close:?}");
        assert!(close.reason.contains(reason), "{message:?}: {close:?}");
    }
}

/// base64url without padding, as JWTs encode their parts.
fn b64url(bytes: &[u8]) -> String {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, b| (n << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

#[tokio::test]
async fn a_token_with_another_algorithm_is_refused_naming_alg() {
    let app = router(secured(store()));
    let claims = serde_json::to_vec(&principal(1, Role::Admin).0).unwrap();
    for alg in ["none", "None", "HS512", "RS256"] {
        let header = json!({"alg": alg, "typ": "JWT"}).to_string();
        let unsigned = format!("{}.{}.", b64url(header.as_bytes()), b64url(&claims));
        let (status, body) = get(&app, "/api/me", Some(&unsigned)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{alg}: {body}");
        assert_eq!(body["error"]["code"], "unauthorized");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("alg") && message.contains(alg) && message.contains("HS256"),
            "{alg}: {message}"
        );
    }
}
