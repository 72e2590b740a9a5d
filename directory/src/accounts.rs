//! Account administration behind `directory user add|reset|disable|enable|list`
//! (`directory user map|ids` is in `identities.rs`).
//!
//! Accounts live in the shared store, so an operator runs these against
//! the same `--store` as the directory replicas and the change is seen by
//! all of them at once. Resetting a password or disabling an account ends
//! every login of that user (the store does it in the same transaction),
//! so a browser signed in with the old password is out on its next call.
//! Passwords arrive as one line on standard input, never as an argument,
//! which would show in `ps` and shell history.

use std::io::BufRead;

use anyhow::{Context, bail};
use auth::password::MIN_LEN;
use store::{Store, StoreError};

use crate::views::utc_minute;

/// The longest password line read, in bytes; the hasher refuses more.
const MAX_PASSWORD_BYTES: usize = 1024;

/// Reads the password: the first line of `input`, without its line ending.
pub fn read_password(input: impl BufRead) -> anyhow::Result<String> {
    let mut line = String::new();
    input
        .take(MAX_PASSWORD_BYTES as u64 + 2)
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let password = line
        .strip_suffix('\n')
        .map(|rest| rest.strip_suffix('\r').unwrap_or(rest))
        .unwrap_or(&line);
    if password.is_empty() {
        bail!(
            "no password on standard input: type it, or pipe it as one line (printf '%s\\n' \"$PASSWORD\" | directory user ...)"
        );
    }
    Ok(password.to_owned())
}

/// Creates an enabled account.
pub async fn add(store: &dyn Store, name: &str, password: &str) -> anyhow::Result<()> {
    check_name(name)?;
    let hash = hash(password)?;
    match store.create_account(name, &hash).await {
        Ok(()) => Ok(()),
        Err(StoreError::Duplicate(_)) => bail!(
            "user {name} already exists; change the password with `directory user reset {name}`"
        ),
        Err(error) => Err(error).context("adding the account"),
    }
}

/// Replaces the password and signs the user out everywhere.
pub async fn reset(store: &dyn Store, name: &str, password: &str) -> anyhow::Result<()> {
    check_name(name)?;
    let hash = hash(password)?;
    store
        .set_password(name, &hash)
        .await
        .map_err(|error| not_found_is_advice(error, name))
}

/// Disables (signing the user out everywhere) or re-enables an account.
pub async fn set_disabled(store: &dyn Store, name: &str, disabled: bool) -> anyhow::Result<()> {
    check_name(name)?;
    store
        .set_disabled(name, disabled)
        .await
        .map_err(|error| not_found_is_advice(error, name))
}

/// One line per account, by name: the name, `enabled` or `disabled`, and
/// when it was created (UTC), separated by tabs.
pub async fn list(store: &dyn Store) -> anyhow::Result<Vec<String>> {
    let accounts = store
        .list_accounts()
        .await
        .context("listing the accounts")?;
    Ok(accounts
        .iter()
        .map(|account| {
            format!(
                "{}\t{}\t{}",
                account.name,
                if account.disabled {
                    "disabled"
                } else {
                    "enabled"
                },
                utc_minute(account.created_at)
            )
        })
        .collect())
}

/// Refuses a name no account may have, saying which names are allowed.
pub(crate) fn check_name(name: &str) -> anyhow::Result<()> {
    if store::valid_user_name(name) {
        Ok(())
    } else {
        bail!(
            "invalid user name {name:?}: use 1 to {} characters of a-z, 0-9, '.', '_' and '-', starting with a letter or a digit",
            store::MAX_USER_NAME_LEN
        )
    }
}

fn hash(password: &str) -> anyhow::Result<String> {
    if password.chars().count() < MIN_LEN {
        bail!("the password is too short: use at least {MIN_LEN} characters");
    }
    if password.len() > MAX_PASSWORD_BYTES {
        bail!("the password is too long: use at most {MAX_PASSWORD_BYTES} bytes");
    }
    auth::password::hash(password)
        .map_err(|error| anyhow::anyhow!("cannot use this password: {error}"))
}

fn not_found_is_advice(error: StoreError, name: &str) -> anyhow::Error {
    match error {
        StoreError::NotFound(_) => {
            anyhow::anyhow!("no user {name}; add it with `directory user add {name}`")
        }
        error => anyhow::Error::new(error).context("changing the account"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_one_line() {
        assert_eq!(
            read_password(&b"correct horse\n"[..]).unwrap(),
            "correct horse"
        );
        assert_eq!(
            read_password(&b"s3cret pass\r\nmore\n"[..]).unwrap(),
            "s3cret pass"
        );
        assert_eq!(read_password(&b"no newline"[..]).unwrap(), "no newline");
        let empty = read_password(&b"\n"[..]).unwrap_err().to_string();
        assert!(empty.contains("no password"), "{empty}");
    }

    #[tokio::test]
    async fn accounts_are_added_reset_disabled_and_listed() {
        let store = store::MemoryStore::new();
        let short = add(&store, "ada", "short").await.unwrap_err().to_string();
        assert_eq!(
            short,
            "the password is too short: use at least 8 characters"
        );
        let bad = add(&store, "Ada", "long enough")
            .await
            .unwrap_err()
            .to_string();
        assert!(bad.contains("invalid user name"), "{bad}");

        add(&store, "ada", "long enough").await.unwrap();
        let again = add(&store, "ada", "long enough")
            .await
            .unwrap_err()
            .to_string();
        assert!(again.contains("already exists"), "{again}");
        let account = store.get_account("ada").await.unwrap().unwrap();
        assert!(auth::password::verify(
            "long enough",
            &account.password_hash
        ));

        reset(&store, "ada", "another one").await.unwrap();
        let account = store.get_account("ada").await.unwrap().unwrap();
        assert!(auth::password::verify(
            "another one",
            &account.password_hash
        ));
        let missing = reset(&store, "bob", "another one")
            .await
            .unwrap_err()
            .to_string();
        assert!(missing.contains("directory user add bob"), "{missing}");

        set_disabled(&store, "ada", true).await.unwrap();
        add(&store, "bob", "bobs password").await.unwrap();
        let lines = list(&store).await.unwrap();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("ada\tdisabled\t"), "{lines:?}");
        assert!(lines[1].starts_with("bob\tenabled\t"), "{lines:?}");
        set_disabled(&store, "ada", false).await.unwrap();
        assert!(list(&store).await.unwrap()[0].starts_with("ada\tenabled\t"));
    }
}
