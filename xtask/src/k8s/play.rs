//! What `play_pod_shapes` stands on: the plan `infra/k8s/playable.py`
//! prints, the play's throwaway credentials and files, podman, the pods'
//! /healthz, and taking it all down again, on failure too.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::{CONTAINERS_CONF, PLAY_STORE_URL};
use crate::cmd;

/// One pod to play, as `playable.py` describes it.
pub struct PodPlan {
    pub name: String,
    pub file: PathBuf,
    pub container: String,
    pub role: Role,
    pub port: u16,
    pub host_id: String,
    pub public_url: String,
    pub isolation: String,
    /// The preStop hook's command, run in the container before it stops.
    pub pre_stop: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Directory,
    Host,
}

/// A podman secret to create and the keys it holds.
pub struct SecretPlan {
    pub name: String,
    pub keys: Vec<String>,
}

/// A Secret's key written as a file for a hostPath volume.
pub struct FilePlan {
    pub path: PathBuf,
    pub key: String,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// A hostPath folder made before the pods start.
pub struct DirPlan {
    pub path: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

#[derive(Default)]
pub struct PlayPlan {
    pub pods: Vec<PodPlan>,
    pub secrets: Vec<SecretPlan>,
    pub files: Vec<FilePlan>,
    pub dirs: Vec<DirPlan>,
}

impl PlayPlan {
    /// Reads `playable.py`'s lines (its docstring gives their shape).
    pub fn parse(text: &str) -> Result<PlayPlan> {
        let mut plan = PlayPlan::default();
        for line in text.lines().filter(|line| !line.is_empty()) {
            let fields: Vec<&str> = line.split('\t').collect();
            let bad =
                || anyhow::anyhow!("playable.py printed a line this xtask cannot read: {line:?}");
            let number = |text: &str| text.parse::<u32>().map_err(|_| bad());
            let octal = |text: &str| u32::from_str_radix(text, 8).map_err(|_| bad());
            match fields.as_slice() {
                [
                    "pod",
                    name,
                    file,
                    container,
                    role,
                    port,
                    host_id,
                    url,
                    isolation,
                    pre_stop @ ..,
                ] => plan.pods.push(PodPlan {
                    name: name.to_string(),
                    file: PathBuf::from(file),
                    container: container.to_string(),
                    role: match *role {
                        "directory" => Role::Directory,
                        "host" => Role::Host,
                        _ => return Err(bad()),
                    },
                    port: port.parse().map_err(|_| bad())?,
                    host_id: host_id.to_string(),
                    public_url: url.to_string(),
                    isolation: isolation.to_string(),
                    pre_stop: pre_stop.iter().map(|word| word.to_string()).collect(),
                }),
                ["secret", name, keys @ ..] => plan.secrets.push(SecretPlan {
                    name: name.to_string(),
                    keys: keys.iter().map(|key| key.to_string()).collect(),
                }),
                ["file", path, _secret, key, mode, uid, gid] => plan.files.push(FilePlan {
                    path: PathBuf::from(path),
                    key: key.to_string(),
                    mode: octal(mode)?,
                    uid: number(uid)?,
                    gid: number(gid)?,
                }),
                ["dir", path, uid, gid, mode] => plan.dirs.push(DirPlan {
                    path: PathBuf::from(path),
                    uid: number(uid)?,
                    gid: number(gid)?,
                    mode: octal(mode)?,
                }),
                _ => return Err(bad()),
            }
        }
        if !plan.pods.iter().any(|pod| pod.role == Role::Directory)
            || !plan.pods.iter().any(|pod| pod.role == Role::Host)
        {
            bail!("playable.py found no directory or no host pod under infra/k8s");
        }
        Ok(plan)
    }
}

/// One play's folder, names and what it has made so far; dropped, it
/// takes down whatever is still up.
pub struct Play {
    pub work: PathBuf,
    /// Put before the manifests' Secret names, so plays never meet.
    pub prefix: String,
    pub played: Vec<PathBuf>,
    secrets: Vec<String>,
}

impl Play {
    pub fn new() -> Result<Play> {
        let id = std::process::id();
        let work = cmd::target_dir().join("k8s-play").join(id.to_string());
        if work.exists() {
            std::fs::remove_dir_all(&work)
                .with_context(|| format!("removing {} left by an earlier play", work.display()))?;
        }
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&work)
            .with_context(|| format!("creating {}", work.display()))?;
        // Pods' hostPath folders lie below: their users must pass through.
        std::fs::set_permissions(&work, std::fs::Permissions::from_mode(0o711))?;
        std::fs::write(work.join("containers.conf"), CONTAINERS_CONF)?;
        Ok(Play {
            work,
            prefix: format!("k8s-play-{id}-"),
            played: Vec::new(),
            secrets: Vec::new(),
        })
    }

    /// `podman` as this play runs it.
    pub fn podman(&self) -> Command {
        podman_in(&self.work)
    }

    /// The values of every Secret key the pods name, made for this play:
    /// a ticket key pair from the image's `directory keygen`, a random
    /// host token, the shared SQLite store (made and migrated by the
    /// image's directory enrolling each host) and each host's enrolment.
    pub fn credentials(&self, image: &str, plan: &PlayPlan) -> Result<BTreeMap<String, String>> {
        let mut values = BTreeMap::new();
        let keys = self.directory_command(image, &["keygen"])?;
        for (name, key) in [
            ("THINLINE_TICKET_KEY", "ticket-key"),
            ("THINLINE_TICKET_PUBLIC_KEY", "ticket-public-key"),
        ] {
            values.insert(key.to_string(), line_value(&keys, name)?);
        }
        values.insert("host-token".into(), random_hex(32)?);
        values.insert("database-url".into(), PLAY_STORE_URL.into());
        for pod in plan.pods.iter().filter(|pod| pod.role == Role::Host) {
            let enrolled = self.directory_command(
                image,
                &["host", "add", &pod.host_id, "--url", &pod.public_url],
            )?;
            values.insert(
                pod.host_id.clone(),
                line_value(&enrolled, "THINLINE_HOST_SECRET")?,
            );
        }
        // A directory runs as uid 1000 and a host as root without
        // DAC_OVERRIDE: both must write the one file (playable.py, "store").
        for entry in std::fs::read_dir(self.work.join("store"))? {
            let path = entry?.path();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666))?;
        }
        Ok(values)
    }

    /// The image's `directory ARGS` as uid 1000 over the play's store; its
    /// standard output, which holds secrets and is never printed.
    fn directory_command(&self, image: &str, args: &[&str]) -> Result<String> {
        let store = self.work.join("store");
        let out = cmd::output(
            self.podman()
                .args([
                    "run",
                    "--rm",
                    "--user",
                    "1000:1000",
                    "--entrypoint",
                    "directory",
                ])
                .arg("--volume")
                .arg(format!("{}:/var/lib/thinline", store.display()))
                .args(["--env", &format!("THINLINE_STORE={PLAY_STORE_URL}"), image])
                .args(args),
        )?;
        if !out.status.success() {
            bail!(
                "`directory {}` in {image} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// A podman secret as `kube play` reads one for `secretKeyRef`: a JSON
    /// object of base64 values, from a file (never a command line).
    pub fn create_secret(
        &mut self,
        secret: &SecretPlan,
        values: &BTreeMap<String, String>,
    ) -> Result<()> {
        let mut json = String::from("{");
        for (index, key) in secret.keys.iter().enumerate() {
            let value = values.get(key).with_context(|| {
                format!(
                    "playable.py asks for the Secret key {key}, which k8s-play makes no value for"
                )
            })?;
            if index > 0 {
                json.push(',');
            }
            json.push_str(&format!("\"{key}\":\"{}\"", base64(value.as_bytes())));
        }
        json.push('}');
        let file = self.work.join(format!("{}.json", secret.name));
        write_private(&file, json.as_bytes(), 0o600)?;
        let out = cmd::output(
            self.podman()
                .args(["secret", "create", &secret.name])
                .arg(&file),
        )?;
        std::fs::remove_file(&file)?;
        if !out.status.success() {
            bail!(
                "podman secret create {} failed: {}",
                secret.name,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        self.secrets.push(secret.name.clone());
        Ok(())
    }

    /// Takes every played pod down, removes the secrets and the folder.
    pub fn down(&mut self) -> Result<()> {
        let started = Instant::now();
        let mut failures = Vec::new();
        while let Some(file) = self.played.pop() {
            if let Err(error) = cmd::run(self.podman().args(["kube", "down"]).arg(&file)) {
                failures.push(format!("{error:#}"));
            }
        }
        for name in std::mem::take(&mut self.secrets) {
            let out = cmd::output(self.podman().args(["secret", "rm", &name]));
            if !out.is_ok_and(|out| out.status.success()) {
                failures.push(format!("podman secret rm {name} failed"));
            }
        }
        if self.work.exists()
            && let Err(error) = std::fs::remove_dir_all(&self.work)
        {
            failures.push(format!("removing {}: {error}", self.work.display()));
        }
        cmd::step(&format!(
            "  taken down ({:.1}s)",
            started.elapsed().as_secs_f64()
        ));
        if !failures.is_empty() {
            bail!(
                "taking the play down left things behind; remove them by hand (`podman pod ls`, \
                 `podman secret ls`):\n{}",
                failures.join("\n")
            );
        }
        Ok(())
    }
}

impl Drop for Play {
    fn drop(&mut self) {
        if !self.played.is_empty() || !self.secrets.is_empty() || self.work.exists() {
            cmd::step("cleaning up the play after a failure");
            if let Err(error) = self.down() {
                cmd::step(&format!("  {error:#}"));
            }
        }
    }
}

/// `podman` with this machine's runtime flags and the play's limits.
fn podman_in(work: &Path) -> Command {
    let mut command = podman_plain();
    command
        .args(crate::image::podman_global_args())
        .env("CONTAINERS_CONF", work.join("containers.conf"));
    command
}

pub fn podman_plain() -> Command {
    Command::new("podman")
}

/// `NAME=value` from a command's output.
fn line_value(output: &str, name: &str) -> Result<String> {
    output
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix('='))
        .map(|value| value.trim().to_string())
        .filter(|value| !value.is_empty())
        .with_context(|| format!("the image's directory printed no {name}=..."))
}

pub fn make_dir(dir: &DirPlan) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .create(&dir.path)
        .with_context(|| format!("creating {}", dir.path.display()))?;
    std::os::unix::fs::chown(&dir.path, Some(dir.uid), Some(dir.gid))?;
    std::fs::set_permissions(&dir.path, std::fs::Permissions::from_mode(dir.mode))?;
    Ok(())
}

/// A Secret's key as the file a Secret volume would show, its mode and
/// owner what the pod's securityContext makes of it.
pub fn write_secret_file(file: &FilePlan, values: &BTreeMap<String, String>) -> Result<()> {
    let value = values.get(&file.key).with_context(|| {
        format!(
            "playable.py asks for the Secret key {}, which k8s-play makes no value for",
            file.key
        )
    })?;
    if let Some(parent) = file.path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)?;
    }
    write_private(&file.path, value.as_bytes(), file.mode)?;
    std::os::unix::fs::chown(&file.path, Some(file.uid), Some(file.gid))?;
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

fn random_hex(bytes: usize) -> Result<String> {
    let mut buffer = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut buffer))
        .context("reading /dev/urandom")?;
    Ok(buffer.iter().map(|b| format!("{b:02x}")).collect())
}

/// Standard base64 with padding, what podman's secrets hold.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = String::new();
    for chunk in bytes.chunks(3) {
        let word = chunk
            .iter()
            .enumerate()
            .fold(0u32, |word, (i, &b)| word | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                text.push(char::from(ALPHABET[((word >> (18 - 6 * i)) & 63) as usize]));
            } else {
                text.push('=');
            }
        }
    }
    text
}

/// A GET of /healthz on 127.0.0.1:`port`: the status and the body.
fn get_health(port: u16) -> Result<(u16, String)> {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(3)))?;
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let (head, body) = answer.split_once("\r\n\r\n").context("no HTTP answer")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .context("no HTTP status")?;
    Ok((status, body.to_string()))
}

/// What a pod's /healthz must say once it serves: a directory, its store;
/// a host, its name, a live lease (the store took its enrolment) and the
/// isolation its manifest asks for (its sandbox started).
fn healthy(pod: &PodPlan, status: u16, body: &str) -> bool {
    let says = |member: &str, value: &str| body.contains(&format!("\"{member}\":\"{value}\""));
    status == 200
        && says("status", "ok")
        && match pod.role {
            Role::Directory => says("store", "sqlite"),
            Role::Host => {
                says("host", &pod.host_id)
                    && says("lease", "live")
                    && says("isolation", &pod.isolation)
            }
        }
}

/// Waits until `pod`'s /healthz says it serves; its body.
pub fn wait_for_health(pod: &PodPlan, patience: Duration) -> Result<String> {
    let deadline = Instant::now() + patience;
    let mut last = String::from("no answer");
    while Instant::now() < deadline {
        match get_health(pod.port) {
            Ok((status, body)) if healthy(pod, status, &body) => return Ok(body),
            Ok((status, body)) => last = format!("{status} {body}"),
            Err(error) => last = format!("{error:#}"),
        }
        if !container_running(&pod.container) {
            bail!(
                "{}'s container {} stopped; last /healthz: {last}",
                pod.name,
                pod.container
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    bail!(
        "{}'s /healthz did not say it serves within {}s; last answer: {last}",
        pod.name,
        patience.as_secs()
    )
}

fn container_running(container: &str) -> bool {
    cmd::output(podman_plain().args([
        "container",
        "inspect",
        "--format",
        "{{.State.Running}}",
        container,
    ]))
    .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "true")
}

/// The end of a container's log, for an error message.
pub fn container_log_tail(container: &str) -> String {
    match cmd::output(podman_plain().args(["logs", "--tail", "30", container])) {
        Ok(out) => format!(
            "last lines of {container}'s log:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(error) => format!("no log of {container}: {error:#}"),
    }
}

/// The host's preStop hook, run in its container as the kubelet would
/// (podman 4.3 runs no lifecycle hook): it must report the drain done, and
/// the host must then say it drains.
pub fn run_pre_stop(pod: &PodPlan) -> Result<()> {
    let started = Instant::now();
    cmd::step(&format!(
        "  {}: preStop `{}`",
        pod.name,
        pod.pre_stop.join(" ")
    ));
    let out = cmd::output(
        podman_plain()
            .args(crate::image::podman_global_args())
            .args(["exec", &pod.container])
            .args(&pod.pre_stop),
    )?;
    let said = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !said.contains("host drained") {
        bail!(
            "{}'s preStop hook did not drain it ({}; an image built before `host-server drain` \
             existed needs `cargo xtask image` again): {said}{}",
            pod.name,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (_, body) = get_health(pod.port)?;
    if !body.contains("\"status\":\"draining\"") {
        bail!("{} drained but its /healthz says {body}", pod.name);
    }
    cmd::step(&format!(
        "  {} drained by its hook ({:.1}s)",
        pod.name,
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_pads_as_the_standard_says() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"sqlite:/x?"), "c3FsaXRlOi94Pw==");
    }

    #[test]
    fn reads_the_plan_playable_py_prints() {
        let text = "pod\td-0\t/w/d-0.yaml\td-0-directory\tdirectory\t5000\t-\t-\t-\n\
                    pod\th-0\t/w/h-0.yaml\th-0-host\thost\t5001\th-0\thttps://h-0.x\tper-user\thost-server\tdrain\n\
                    dir\t/w/store\t0\t0\t777\n\
                    secret\tp-s\tdatabase-url\thost-token\n\
                    file\t/w/k\ts\tticket-key\t440\t1000\t1000\n";
        let plan = PlayPlan::parse(text).unwrap();
        assert_eq!(plan.pods.len(), 2);
        assert_eq!(plan.pods[1].pre_stop, ["host-server", "drain"]);
        assert_eq!(plan.dirs[0].mode, 0o777);
        assert_eq!(plan.files[0].mode, 0o440);
        assert_eq!(plan.secrets[0].keys, ["database-url", "host-token"]);
        assert!(PlayPlan::parse("pod\tonly\n").is_err());
        assert!(PlayPlan::parse("dir\t/w/store\t0\t0\t777\n").is_err());
    }

    #[test]
    fn a_host_is_healthy_only_with_its_name_a_live_lease_and_its_isolation() {
        let pod = PodPlan {
            name: "h-0".into(),
            file: "/w/h-0.yaml".into(),
            container: "h-0-host".into(),
            role: Role::Host,
            port: 1,
            host_id: "h-0".into(),
            public_url: "https://h-0.x".into(),
            isolation: "per-user".into(),
            pre_stop: Vec::new(),
        };
        let body = r#"{"status":"ok","host":"h-0","lease":"live","isolation":"per-user"}"#;
        assert!(healthy(&pod, 200, body));
        assert!(!healthy(&pod, 503, body));
        assert!(!healthy(&pod, 200, &body.replace("live", "lapsed")));
        assert!(!healthy(&pod, 200, &body.replace("per-user", "shared-uid")));
    }
}
