//! Waiting on a condition with a deadline, never on a bare sleep.
//!
//! A slow machine must make tests slower, not flaky, and a test that times
//! out must say what it was waiting for and what it saw instead: so every
//! wait in every crate's tests is this one function.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

/// How often [`wait_until`] re-evaluates its predicate.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Re-evaluates `probe` until it yields `Ok(Ok(value))`, or fails after
/// `timeout` with `what` and the last thing the probe saw.
///
/// The probe returns `Ok(Err(seen))` while not ready, where `seen` describes
/// the current state; an error from the probe itself ends the wait at once.
pub async fn wait_until<T, F, Fut>(timeout: Duration, what: &str, mut probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Result<T, String>>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let seen = match probe().await? {
            Ok(value) => return Ok(value),
            Err(seen) => seen,
        };
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}; last seen:\n{seen}");
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reports_what_it_last_saw() {
        let mut calls = 0;
        let err = wait_until(Duration::from_millis(120), "the impossible", || {
            calls += 1;
            let seen = format!("call {calls}");
            async move { Ok::<Result<(), String>, anyhow::Error>(Err(seen)) }
        })
        .await
        .expect_err("the predicate never holds");
        let text = format!("{err}");
        assert!(text.contains("the impossible"), "{text}");
        assert!(text.contains("call "), "{text}");
        assert!(calls >= 2, "polled {calls} times");
    }

    #[tokio::test]
    async fn returns_the_value_once_ready() {
        let mut calls = 0;
        let value = wait_until(Duration::from_secs(5), "the third call", || {
            calls += 1;
            let now = calls;
            async move {
                Ok(if now >= 3 {
                    Ok(now)
                } else {
                    Err(format!("call {now}"))
                })
            }
        })
        .await
        .expect("ready on the third call");
        assert_eq!(value, 3);
    }

    #[tokio::test]
    async fn an_error_of_the_probe_ends_the_wait_at_once() {
        let mut calls = 0;
        let err = wait_until(Duration::from_secs(60), "anything", || {
            calls += 1;
            async { Err::<Result<(), String>, _>(anyhow::anyhow!("the probe broke")) }
        })
        .await
        .expect_err("the probe fails");
        assert!(format!("{err}").contains("the probe broke"));
        assert_eq!(calls, 1);
    }
}
