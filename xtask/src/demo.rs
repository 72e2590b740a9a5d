//! `cargo xtask demo`: the whole product on one machine.
//!
//! A directory serving the page, three interchangeable hosts registered with
//! it, one SQLite file as the shared store and one folder as the shared home
//! root, all under `.thinline/` in the workspace. Killing the host that
//! serves a session moves it to another, in front of the user.
//!
//! The directory's ticket key and a `demo` account are made on the first
//! run and kept (mode 0600) under `.thinline/`, so the printed password
//! stays the same between runs.

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
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
    // Hosts prove themselves to the directory with a shared secret.
    let host_token = random_token()?;
    let (ticket_key, ticket_public_key) = ticket_keys(&state)?;
    let password = demo_account(&state, &store)?;

    let mut children: Vec<(String, Child)> = Vec::new();
    let directory = Command::new(build::directory_binary())
        .current_dir(&root)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--store", &store, "--static-dir"])
        .arg(root.join("static"))
        .env("THINLINE_HOST_TOKEN", &host_token)
        .env("THINLINE_TICKET_KEY", &ticket_key)
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
            .args(["--allow-origin", &directory_url])
            .env("THINLINE_TICKET_PUBLIC_KEY", &ticket_public_key)
            .env("THINLINE_HOST_TOKEN", &host_token)
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("starting host h{n}"))?;
        children.push((format!("h{n}"), host));
    }
    println!();
    println!("  Thinline is running: open {directory_url}/");
    println!("  sign in as `demo` with password: {password}");
    println!("  (more users: target/release/directory user add NAME --store {store})");
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

/// The directory's ticket signing key and its public half, made once with
/// `directory keygen` and kept in `.thinline/ticket.env`.
fn ticket_keys(state: &Path) -> Result<(String, String)> {
    let file = state.join("ticket.env");
    if !file.is_file() {
        let output = Command::new(build::directory_binary())
            .arg("keygen")
            .output()
            .context("running `directory keygen`")?;
        if !output.status.success() {
            bail!(
                "`directory keygen` failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        write_private(&file, &output.stdout)?;
    }
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let value = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("{name}=")))
            .map(|v| v.trim().to_owned())
            .with_context(|| {
                format!(
                    "{} has no {name}; delete it to make a new key",
                    file.display()
                )
            })
    };
    Ok((
        value("THINLINE_TICKET_KEY")?,
        value("THINLINE_TICKET_PUBLIC_KEY")?,
    ))
}

/// The `demo` account's password: made up and set on the first run, kept
/// in `.thinline/demo-password`.
fn demo_account(state: &Path, store: &str) -> Result<String> {
    let file = state.join("demo-password");
    if let Ok(password) = std::fs::read_to_string(&file) {
        return Ok(password.trim().to_owned());
    }
    let password = random_token()?;
    // `add` fails if an earlier demo made the account: then set it anew.
    if !user_command("add", store, &password)? && !user_command("reset", store, &password)? {
        bail!("could not create the demo account; see the messages above");
    }
    write_private(&file, password.as_bytes())?;
    Ok(password)
}

/// `directory user VERB demo --store STORE` with the password on stdin.
fn user_command(verb: &str, store: &str, password: &str) -> Result<bool> {
    let mut child = Command::new(build::directory_binary())
        .args(["user", verb, "demo", "--store", store])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("running `directory user {verb}`"))?;
    child
        .stdin
        .take()
        .context("no stdin for `directory user`")?
        .write_all(format!("{password}\n").as_bytes())
        .context("writing the password")?;
    Ok(child.wait()?.success())
}

/// Writes a secret readable by this user only.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .with_context(|| format!("writing {}", path.display()))
}
