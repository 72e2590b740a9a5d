//! The host's operational surface: the ready line, `/healthz`, `/metrics`
//! and a clean exit on SIGTERM, which deployment scripts and the benchmarks
//! rely on.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use tests::http;

use crate::{PATIENCE, attach_at_prompt, start_bash_host};

#[tokio::test]
async fn healthz_and_metrics_count_sessions_and_bytes() -> Result<()> {
    let host = start_bash_host()?;
    let health = http::get(host.port, "/healthz").await?;
    ensure!(health.status == 200, "/healthz answered {}", health.status);
    let body: serde_json::Value = serde_json::from_str(&health.body)
        .with_context(|| format!("/healthz body {:?}", health.body))?;
    ensure!(body["status"] == "ok", "{body}");
    ensure!(body["host"] == "h1", "{body}");
    ensure!(body["sessions"] == 0, "{body}");

    let mut client = attach_at_prompt(&host).await?;
    crate::assert_echoes(&mut client).await?;
    let health = http::get(host.port, "/healthz").await?;
    let body: serde_json::Value = serde_json::from_str(&health.body)?;
    ensure!(body["sessions"] == 1, "{body}");

    let metrics = tests::wait_until(
        PATIENCE,
        "metrics to count the session's output",
        || async {
            let metrics = http::metrics(host.port).await?;
            let bytes = metrics
                .get("thinline_pty_bytes_read_total")
                .copied()
                .unwrap_or(0.0);
            Ok(if bytes > 0.0 {
                Ok(metrics)
            } else {
                Err(format!("{metrics:?}"))
            })
        },
    )
    .await?;
    for name in [
        "thinline_sessions",
        "thinline_pty_bytes_read_total",
        "thinline_frames_sent_total",
        "thinline_frame_bytes_sent_total",
    ] {
        ensure!(
            metrics.contains_key(name),
            "/metrics lacks {name}: {metrics:?}"
        );
    }
    ensure!(metrics["thinline_sessions"] == 1.0, "{metrics:?}");
    ensure!(
        metrics["thinline_frames_sent_total"] >= client.frames as f64,
        "the client got {} frames, the host counts {}",
        client.frames,
        metrics["thinline_frames_sent_total"]
    );
    Ok(())
}

#[tokio::test]
async fn sigterm_stops_the_host_cleanly() -> Result<()> {
    let mut host = start_bash_host()?;
    let _client = attach_at_prompt(&host).await?;
    let status = host
        .terminate(Duration::from_secs(10))
        .context("the host ignored SIGTERM for 10 s")?;
    ensure!(status.success(), "the host exited with {status} on SIGTERM");
    Ok(())
}
