//! SIGTERM — what `docker stop`, Kubernetes and systemd send — stops `crmpulse run` the
//! way Ctrl-C does: the server drains, the stack shuts down and the process exits 0
//! (before, SIGTERM killed it mid-write, and as a container's PID 1 it was ignored
//! until the runtime's SIGKILL).

mod common;

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, wait_up};

#[test]
fn sigterm_drains_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_crmpulse"))
        .args(["--now", "2026-11-20T12:00:00Z", "run", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_up(port);

    let kill = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = server.kill();
            panic!("still running 20 s after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    server
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}\n{stderr}");
    assert!(stderr.contains("SIGTERM: shutting down"), "{stderr}");
}
