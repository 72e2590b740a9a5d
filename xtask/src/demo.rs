//! `cargo xtask demo`: the whole product on one machine.
//!
//! A directory serving the page, three interchangeable hosts registered with
//! it, one SQLite file as the shared store and one folder as the shared home
//! root, all under `.thinline/` in the workspace. Killing the host that
//! serves a session moves it to another, in front of the user.

use std::io::Read;
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::{build, cmd};

const HOSTS: u16 = 3;

pub fn demo(rest: &[String]) -> Result<()> {
    let mut port: u16 = 8080;
    let mut args = rest.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => {
                port = args
                    .next()
                    .context("--port needs a number")?
                    .parse()
                    .context("--port needs a number")?;
            }
            other => bail!("unexpected argument `{other}` (demo takes --port N)"),
        }
    }
    build::build_all()?;
    let root = cmd::workspace_root();
    let state = root.join(".thinline");
    std::fs::create_dir_all(state.join("homes")).context("creating .thinline/")?;
    let store = format!("sqlite:{}", state.join("demo.sqlite").display());
    let directory_url = format!("http://127.0.0.1:{port}");
    let token = random_token()?;
    // Hosts prove themselves to the directory with a second secret.
    let host_token = random_token()?;

    let mut children: Vec<(String, Child)> = Vec::new();
    let directory = Command::new(build::directory_binary())
        .current_dir(&root)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--store", &store, "--static-dir"])
        .arg(root.join("static"))
        .env("THINLINE_HOST_TOKEN", &host_token)
        .stdout(Stdio::null())
        .spawn()
        .context("starting the directory")?;
    children.push(("directory".into(), directory));
    // Hosts register at once; give the directory a moment to listen so the
    // first renewal does not log a needless failure.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    for n in 1..=HOSTS {
        let host_port = port + n;
        let host = Command::new(build::host_binary())
            .current_dir(&root)
            .args(["serve", "--listen", &format!("127.0.0.1:{host_port}")])
            .args(["--host-id", &format!("h{n}")])
            .args(["--directory", &directory_url, "--store", &store])
            .arg("--home-root")
            .arg(state.join("homes"))
            .arg("--static-dir")
            .arg(root.join("static"))
            .env("THINLINE_TOKEN", &token)
            .env("THINLINE_HOST_TOKEN", &host_token)
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("starting host h{n}"))?;
        children.push((format!("h{n}"), host));
    }
    println!();
    println!("  Thinline is running: open {directory_url}/");
    println!("  access token: {token}");
    println!();
    for (name, child) in &children {
        println!("  {name:<9} pid {}", child.id());
    }
    println!();
    println!("  Kill the host named in the page's status line (kill -9 PID) and watch");
    println!("  the session move. Ctrl-C stops everything; state stays in .thinline/.");
    println!();
    // Ctrl-C reaches every child (they share this terminal's process group);
    // wait for all of them so the prompt returns only when they are gone.
    for (name, mut child) in children {
        let status = child
            .wait()
            .with_context(|| format!("waiting for {name}"))?;
        if !status.success() {
            eprintln!("  {name} exited: {status}");
        }
    }
    Ok(())
}

/// 128 random bits as hex, from the kernel.
fn random_token() -> Result<String> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("reading /dev/urandom")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
