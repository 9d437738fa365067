//! crmpulse as a library: everything the `crmpulse` binary runs, so that tests and
//! the benchmarks (the `crmpulse-bench` binary of `benches/`) drive the same code.
//! [`stack`] composes a source, the pipeline and the sinks from configuration (`demo`,
//! `run`, `serve`); the other modules are the commands' parts (configuration,
//! credentials, TLS, Kafka tools).

pub mod auth;
pub mod check;
pub mod checkpoint;
pub mod config;
pub mod kafka;
pub mod keyring;
#[cfg(test)]
mod secrets_tests;
pub mod stack;
pub mod tls;

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM (what `docker stop`, Kubernetes
/// and systemd send): every server stops on either, drains and exits 0.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            // Without a SIGTERM handler only Ctrl-C stops the server.
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
        () = term => tracing::info!("SIGTERM: shutting down"),
    }
}
