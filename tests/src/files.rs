//! Files for the file transfer tests and benchmark: noise no compressor
//! shrinks, and the md5 sums that prove a copy whole.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, ensure};

/// Writes `len` bytes of noise (xorshift, seeded by `seed`) to
/// `dir/name`, 8 MiB at a time, and returns its path.
pub fn noise_file(dir: &Path, name: &str, len: u64, seed: u64) -> Result<PathBuf> {
    let path = dir.join(name);
    let file =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let mut x = seed | 1;
    let mut chunk = vec![0u8; 8 << 20];
    let mut written = 0;
    while written < len {
        for word in chunk.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            word.copy_from_slice(&x.to_le_bytes());
        }
        let n = (len - written).min(chunk.len() as u64) as usize;
        out.write_all(&chunk[..n])?;
        written += n as u64;
    }
    out.flush()?;
    Ok(path)
}

/// The md5 of the file at `path`, in hex, as `md5sum` prints it.
pub fn md5(path: &Path) -> Result<String> {
    let out = Command::new("md5sum")
        .arg(path)
        .output()
        .context("running md5sum")?;
    ensure!(out.status.success(), "md5sum {} failed", path.display());
    Ok(String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned())
}
