//! `crmpulse check <URL>` against a running server: every step `ok` and exit 0 over
//! HTTP and over HTTPS with a private CA; a refused token, a dead URL and an unknown
//! section each exit 1 naming the step that failed; `--ready` (the container health
//! check) needs no token and fails on a dead URL.

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{creds, free_port, start, start_with, wait_up};

const NOW: &str = "2026-11-20T12:00:00Z";

fn check(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crmpulse"))
        .arg("check")
        .args(args)
        .env_remove("CRMPULSE_TOKEN")
        .output()
        .unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn a_healthy_deployment_passes_every_step_and_a_broken_one_names_the_step() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = start(port, dir.path(), NOW);
    wait_up(port);
    let url = format!("http://127.0.0.1:{port}");
    let token = creds(port).token;

    let out = check(&[&url, "--token", &token]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for step in [
        "ok    healthz",
        "ok    token",
        "ok    section  kpi at progress",
        "ok    live     first snapshot in",
    ] {
        assert!(stdout.contains(step), "{step:?} not in\n{stdout}");
    }
    assert!(stdout.contains("role \"admin\""), "{stdout}");

    let out = check(&[&url, "--token", "not-a-token"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout.contains("ok    healthz"));
    assert!(stderr.contains("FAIL  token"), "{stderr}");
    assert!(stderr.contains("401"), "{stderr}");

    let out = check(&[&url, "--token", &token, "--section", "sales"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("FAIL  section"), "{stderr}");

    let _ = server.kill();
    let _ = server.wait();
    let out = check(&[&url, "--token", &token, "--timeout-s", "2"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("FAIL  healthz"), "{stderr}");
}

#[test]
fn https_and_wss_are_checked_against_the_given_ca() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let config = dir.path().join("crmpulse.toml");
    std::fs::write(
        &config,
        format!(
            "[tls]\ncert_path = {:?}\nkey_path = {:?}\n",
            cert_path.display().to_string(),
            key_path.display().to_string()
        ),
    )
    .unwrap();
    let port = free_port();
    let mut server = start_with(
        port,
        &dir.path().join("data"),
        NOW,
        &["--config".as_ref(), config.as_os_str()],
    );
    wait_up(port);
    let url = format!("https://localhost:{port}");
    let token = creds(port).token;
    let out = check(&[
        &url,
        "--token",
        &token,
        "--ca-file",
        cert_path.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("ok    live"), "{stdout}");
    // Without the CA the certificate is not trusted.
    let out = check(&[&url, "--token", &token, "--timeout-s", "3"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("FAIL  healthz"), "{stderr}");
    let _ = server.kill();
    let _ = server.wait();
}

#[test]
fn ready_needs_no_token_and_fails_on_a_dead_url() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = start(port, dir.path(), NOW);
    wait_up(port);
    let url = format!("http://127.0.0.1:{port}");
    // `/readyz` turns 200 once the (empty) log is read; the probe retries until then.
    let deadline = Instant::now() + Duration::from_secs(30);
    let out = loop {
        let out = check(&["--ready", &url]);
        if out.status.success() || Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("ok    readyz   ready"), "{stdout}");
    assert!(!stdout.contains("token"), "{stdout}");

    // Without `--ready` the token is required.
    let out = check(&[&url]);
    assert_eq!(out.status.code(), Some(2), "clap's usage error");
    assert!(text(&out).1.contains("--token"), "{}", text(&out).1);

    let _ = server.kill();
    let _ = server.wait();
    let out = check(&["--ready", &url, "--timeout-s", "2"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("FAIL  readyz"), "{stderr}");
}
