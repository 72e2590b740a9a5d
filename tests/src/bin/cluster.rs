//! `cargo xtask cluster up|down|status`: Thinline in containers on this
//! machine (see `tests::containers`). `up` keeps the homes and the
//! database of an earlier `up`; `down` removes everything.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use tests::containers::{self, ClusterSpec, ContainerCluster, Engine};
use tests::paths::workspace_root;

const NAME: &str = "thinline";
const USER: &str = "demo";

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("cluster: cannot start: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("cluster: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<()> {
    let verb = std::env::args().nth(1).unwrap_or_default();
    let state_dir = workspace_root().join(".thinline").join("cluster");
    let engine = Engine::from_env()?;
    match verb.as_str() {
        "up" => up(state_dir).await,
        "down" => {
            containers::down(&engine, NAME, true).await?;
            let _ = std::fs::remove_dir_all(&state_dir);
            println!("cluster `{NAME}`: containers, network, volumes and secrets removed");
            Ok(())
        }
        "status" => {
            let table = containers::status(&engine, NAME).await?;
            if table.trim().is_empty() {
                println!("cluster `{NAME}` is not running: `cargo xtask cluster up` starts it");
            } else {
                print!("{table}");
                if let Ok(url) = std::fs::read_to_string(state_dir.join("url")) {
                    println!("page: {url}");
                }
            }
            Ok(())
        }
        other => bail!("unknown verb `{other}`: up, down or status"),
    }
}

async fn up(state_dir: std::path::PathBuf) -> Result<()> {
    let mut spec = ClusterSpec::new(NAME, &state_dir);
    spec.keep_data = true;
    eprintln!("cluster: starting PostgreSQL, 2 directories and 3 hosts in containers");
    let cluster = ContainerCluster::up(spec).await?;
    let password_file = state_dir.join("demo-password");
    let password = match std::fs::read_to_string(&password_file) {
        Ok(password) => password,
        Err(_) => {
            let password = containers::random_hex(9)?;
            cluster
                .add_user(USER, &password)
                .await
                .context("adding the demo account")?;
            containers::write_private(&password_file, &password)?;
            password
        }
    };
    let url = cluster.page_url();
    containers::write_private(&state_dir.join("url"), &url)?;
    println!();
    println!("  Thinline is running in containers: open {url}");
    println!("  sign in as `{USER}` with password: {password}");
    println!(
        "  (more users: podman exec -i {}-directory-1 directory user add NAME)",
        NAME
    );
    println!();
    for node in cluster.nodes() {
        println!("  {:<22} {}", node.name, node.ip);
    }
    println!();
    println!("  podman kill {NAME}-host-1 (the host in the page's status line) and watch the");
    println!("  session move; `cargo xtask cluster status` and `cargo xtask cluster down`.");
    Ok(())
}
