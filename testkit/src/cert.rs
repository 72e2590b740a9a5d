//! A self-signed certificate in PEM files, for servers under test that
//! speak TLS and clients that must trust exactly them.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// A certificate for some names (and its key), written to a temporary
/// folder that lives as long as this value.
#[derive(Debug)]
pub struct SelfSigned {
    _dir: tempfile::TempDir,
    /// The certificate, PEM: what a client trusts.
    pub cert: PathBuf,
    /// Its private key, PEM: what the server presents it with.
    pub key: PathBuf,
}

impl SelfSigned {
    /// A certificate for `names` (DNS names or IP addresses).
    pub fn for_names(names: &[&str]) -> Result<SelfSigned> {
        let dir = tempfile::Builder::new()
            .prefix("thinline-pki-")
            .tempdir()
            .context("creating a folder for the certificate")?;
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let certified =
            rcgen::generate_simple_self_signed(names).context("generating a certificate")?;
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, certified.cert.pem()).context("writing the certificate")?;
        std::fs::write(&key, certified.signing_key.serialize_pem()).context("writing the key")?;
        Ok(SelfSigned {
            _dir: dir,
            cert,
            key,
        })
    }

    /// The folder the files are in, for more files a test writes beside
    /// them; it goes with this value.
    pub fn dir(&self) -> &Path {
        self._dir.path()
    }

    /// A certificate for `localhost` and `127.0.0.1`.
    pub fn localhost() -> Result<SelfSigned> {
        Self::for_names(&["localhost", "127.0.0.1"])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_certificate_and_its_key() -> Result<()> {
        let pki = SelfSigned::localhost()?;
        let cert = std::fs::read_to_string(&pki.cert)?;
        let key = std::fs::read_to_string(&pki.key)?;
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"), "{cert}");
        assert!(key.contains("PRIVATE KEY-----"), "{key}");
        Ok(())
    }
}
