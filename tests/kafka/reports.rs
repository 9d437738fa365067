//! Two `serve` replicas share `crm.reports.v1`: a schedule created through one is
//! listed by the other, and its slot is delivered exactly once to a real SMTP server
//! (aiosmtpd on loopback) although both schedulers see it due.

use std::time::Duration;

use crate::common::smtp::Smtp;
use crate::{Broker, Guard, admin_token, block_on, free_port, get_json, now_ms, setup};

#[test]
#[ignore = "needs a Kafka broker: scripts/test starts tansu and runs it"]
fn two_serve_replicas_send_each_slot_once_and_show_the_same_schedules_and_history() {
    let broker = Broker::from_env();
    let s = setup(&broker.bootstrap(), 1);
    let smtp = Smtp::start(s.dir.path());
    let mut toml = std::fs::read_to_string(&s.config_path).unwrap();
    toml.push_str(&format!(
        "\n[reports]\nsmtp_url = \"smtp://127.0.0.1:{}\"\nfrom = \"crmpulse <reports@crmpulse.test>\"\ntick_ms = 100\nretry_initial_ms = 100\n",
        smtp.port
    ));
    std::fs::write(&s.config_path, toml).unwrap();
    s.create_topics(&broker);

    // The replicas' clocks start 15 s before a whole minute (their tokens, issued at
    // NOW, stay valid): the slot at that minute is due soon after they are up.
    let start = now_ms() + 45_000;
    let start_at = chrono::DateTime::from_timestamp_millis(start)
        .unwrap()
        .to_rfc3339();
    let t0 = std::time::Instant::now();
    let ports = [free_port(), free_port()];
    let _replicas: Vec<Guard> = ports
        .iter()
        .enumerate()
        .map(|(i, port)| {
            Guard(s.spawn_at(
                &format!("serve-{i}"),
                &start_at,
                &["serve", "--listen", &format!("127.0.0.1:{port}")],
            ))
        })
        .collect();
    let base = |i: usize| format!("http://127.0.0.1:{}", ports[i]);
    for i in 0..2 {
        get_json(
            &format!("{}/api/reports/schedules", base(i)),
            Duration::from_secs(60),
        );
    }

    // Due at the first whole minute at least 5 s after the replicas' clocks now (no
    // later than `start` plus the time since they were spawned).
    let now = start + i64::try_from(t0.elapsed().as_millis()).unwrap();
    let due = (now + 5_000).div_euclid(60_000) * 60_000 + 60_000;
    let due_time = chrono::DateTime::from_timestamp_millis(due).unwrap();
    let client = reqwest::Client::new();
    let created: serde_json::Value = block_on(async {
        let res = client
            .post(format!("{}/api/reports/schedules", base(0)))
            .bearer_auth(admin_token())
            .json(&serde_json::json!({
                "name": "Replicated", "cadence": "daily",
                "local_time": due_time.format("%H:%M").to_string(),
                "recipients": ["lead@crmpulse.test"], "sections": ["summary"],
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        res.json().await.unwrap()
    });
    // The other replica lists it, once its tail of the topic has read it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let listed = get_json(
            &format!("{}/api/reports/schedules", base(1)),
            Duration::from_secs(10),
        );
        if listed["schedules"][0]["id"] == created["id"] {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "replica 1 lists {listed}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let messages = block_on(smtp.wait_for(1, Duration::from_secs(150)));
    // Both schedulers tick every 100 ms: give the loser many chances to send twice.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        smtp.messages().len(),
        1,
        "exactly one replica sent the slot"
    );
    assert!(String::from_utf8_lossy(&messages[0]).contains("Subject: Replicated - "));
    let history: Vec<serde_json::Value> = (0..2)
        .map(|i| {
            get_json(
                &format!("{}/api/reports/runs", base(i)),
                Duration::from_secs(10),
            )
        })
        .collect();
    assert_eq!(
        history[0]["runs"].as_array().unwrap().len(),
        1,
        "{}",
        history[0]
    );
    assert_eq!(history[0]["runs"][0]["status"], "sent");
    assert_eq!(
        history[0], history[1],
        "both replicas show the same history"
    );
}
