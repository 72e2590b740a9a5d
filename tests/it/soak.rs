//! The soak's CI variant: a minute and a half of 100 sessions typing and
//! flooding on each backend, then idle; every host and directory must be
//! back within 20 % of its idle memory, with no descriptor, PTY or process
//! of any session left (`cargo xtask bench soak` runs the long one).

use std::time::Duration;

use anyhow::Result;
use tests::cluster::Backend;
use tests::soak::{SoakOptions, run};

/// Half of the three minutes the CI variant spends, on each backend.
const LOAD_FOR: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_soak_on_sqlite_gives_everything_back() -> Result<()> {
    let report = run(SoakOptions::new(Backend::Sqlite, LOAD_FOR)).await?;
    eprintln!("{}", report.table());
    report.check()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_soak_on_postgres_gives_everything_back() -> Result<()> {
    if tests::pg::database_url().is_none() {
        eprintln!("a_soak_on_postgres_gives_everything_back: skipped, DATABASE_URL is not set");
        return Ok(());
    }
    let report = run(SoakOptions::new(Backend::Postgres, LOAD_FOR)).await?;
    eprintln!("{}", report.table());
    report.check()
}
