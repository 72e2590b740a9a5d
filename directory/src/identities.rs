//! Unix identity administration behind `directory user map|ids`.
//!
//! Every user's sessions run as one uid and gid, the same on every host,
//! which the hosts allocate in the shared store from their `--uid-range`
//! the first time they start a session for the user. An operator who wants
//! a user to work as an account that already exists on the hosts (to keep
//! the owner of files that account has) maps the user to it here instead.
//! The mapping lives in the store, so every host uses it for the sessions
//! it starts from then on. Files are not touched: those made under an
//! earlier uid keep that owner until the operator changes it.

use anyhow::{Context, bail};
use store::{Store, StoreError, UnixIdentity};

use crate::accounts::check_name;

/// Where `--system-user` is looked up. Users that only a directory
/// service (LDAP, sssd) knows are not in it; the operator gives `--uid`
/// and `--gid` for those.
pub const PASSWD: &str = "/etc/passwd";

/// Maps `name` to `uid` and `gid`, and returns the identity it replaced,
/// if any, so the operator can be told about files owned by the old uid.
pub async fn map(
    store: &dyn Store,
    name: &str,
    uid: u32,
    gid: u32,
) -> anyhow::Result<Option<UnixIdentity>> {
    check_name(name)?;
    let before = store
        .list_unix_identities()
        .await
        .context("reading the users' identities")?
        .into_iter()
        .find_map(|(holder, identity)| (holder == name).then_some(identity));
    match store.map_unix_identity(name, uid, gid).await {
        Ok(()) => Ok(before),
        Err(error @ StoreError::UnusableUnixId { .. }) => bail!("{error}"),
        Err(error @ StoreError::UidTaken { .. }) => {
            bail!("{error}; `directory user ids` shows who has which uid")
        }
        Err(error) => Err(error).context("recording the identity in the store"),
    }
}

/// One line per user with an identity, by name: the name, uid, gid, and
/// `mapped` (by an operator) or `allocated` (by a host from its range),
/// separated by tabs.
pub async fn list(store: &dyn Store) -> anyhow::Result<Vec<String>> {
    let identities = store
        .list_unix_identities()
        .await
        .context("listing the users' identities")?;
    Ok(identities
        .iter()
        .map(|(name, identity)| {
            format!(
                "{name}\t{}\t{}\t{}",
                identity.uid,
                identity.gid,
                if identity.mapped {
                    "mapped"
                } else {
                    "allocated"
                }
            )
        })
        .collect())
}

/// The uid and gid of `user` in [`PASSWD`].
pub fn system_user(user: &str) -> anyhow::Result<(u32, u32)> {
    let passwd = std::fs::read_to_string(PASSWD)
        .with_context(|| format!("reading {PASSWD} to look up --system-user {user}"))?;
    match passwd_entry(&passwd, user) {
        Some(Ok(ids)) => Ok(ids),
        Some(Err(line)) => bail!(
            "the entry of {user} in {PASSWD} has no numeric uid and gid ({line:?}); give --uid and --gid instead"
        ),
        None => bail!(
            "no user {user} in {PASSWD}; if a directory service knows it, give --uid and --gid instead (`id -u {user}`, `id -g {user}`)"
        ),
    }
}

/// The uid and gid of `user` in the text of a passwd(5) file
/// (`name:password:uid:gid:gecos:home:shell`), or the line naming it if
/// they are not numbers; `None` if no line names it. The first line wins,
/// as for getpwnam(3).
pub fn passwd_entry<'a>(passwd: &'a str, user: &str) -> Option<Result<(u32, u32), &'a str>> {
    passwd
        .lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let mut fields = line.split(':');
            if fields.next() != Some(user) {
                return None;
            }
            let mut fields = fields.skip(1).map(|field| field.parse::<u32>().ok());
            Some(match (fields.next().flatten(), fields.next().flatten()) {
                (Some(uid), Some(gid)) => Ok((uid, gid)),
                _ => Err(line),
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::UidRange;

    const PASSWD_TEXT: &str = "\
root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
ada:x:1000:1000:Ada Lovelace,,,:/home/ada:/bin/bash
broken:x:one:1000::/home/broken:/bin/sh
ada:x:2000:2000:a later duplicate:/home/ada2:/bin/sh
# a comment:x:5:5
";

    #[test]
    fn passwd_lines_give_uid_and_gid() {
        assert_eq!(passwd_entry(PASSWD_TEXT, "ada"), Some(Ok((1000, 1000))));
        assert_eq!(passwd_entry(PASSWD_TEXT, "daemon"), Some(Ok((1, 1))));
        assert_eq!(passwd_entry(PASSWD_TEXT, "root"), Some(Ok((0, 0))));
        assert_eq!(
            passwd_entry(PASSWD_TEXT, "broken"),
            Some(Err("broken:x:one:1000::/home/broken:/bin/sh"))
        );
        for missing in ["bob", "", "ad", "x", "# a comment"] {
            assert_eq!(passwd_entry(PASSWD_TEXT, missing), None, "{missing:?}");
        }
    }

    #[tokio::test]
    async fn identities_are_mapped_and_listed() {
        let store = store::MemoryStore::new();
        let range: UidRange = "200000-299999".parse().unwrap();
        store.unix_identity("bob", range).await.unwrap();

        assert_eq!(map(&store, "ada", 1000, 1000).await.unwrap(), None);
        let before = map(&store, "ada", 1001, 100).await.unwrap();
        assert_eq!(
            before,
            Some(UnixIdentity {
                uid: 1000,
                gid: 1000,
                mapped: true
            })
        );
        assert_eq!(
            list(&store).await.unwrap(),
            ["ada\t1001\t100\tmapped", "bob\t200000\t200000\tallocated"]
        );

        let root = map(&store, "ada", 0, 0).await.unwrap_err().to_string();
        assert!(root.contains("never run as root"), "{root}");
        let taken = map(&store, "cy", 200000, 200000)
            .await
            .unwrap_err()
            .to_string();
        assert!(taken.contains("identity of bob"), "{taken}");
        assert!(taken.contains("directory user ids"), "{taken}");
        let bad = map(&store, "Ada", 1002, 1002)
            .await
            .unwrap_err()
            .to_string();
        assert!(bad.contains("invalid user name"), "{bad}");
        assert_eq!(list(&store).await.unwrap().len(), 2);
    }
}
