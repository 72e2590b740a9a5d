//! Which user names callers accept (`store::valid_user_name`).

use store::{MAX_USER_NAME_LEN, valid_user_name};

#[test]
fn plain_lowercase_names_are_valid() {
    for name in [
        "ada",
        "a",
        "0",
        "9lives",
        "ada.lovelace",
        "ada_l",
        "ada-l",
        "a-._",
    ] {
        assert!(valid_user_name(name), "{name:?} should be valid");
    }
    let longest = "a".repeat(MAX_USER_NAME_LEN);
    assert!(valid_user_name(&longest));
}

#[test]
fn other_names_are_refused() {
    let too_long = "a".repeat(MAX_USER_NAME_LEN + 1);
    for name in [
        "",
        &too_long,
        // Must start with a letter or a digit.
        ".ada",
        "..",
        "-rf",
        "_ada",
        // Lower case ASCII only: no folding, no look-alikes.
        "Ada",
        "ADA",
        "adé",
        "аda", // Cyrillic a
        // Nothing that splits paths, shells, URLs or logs.
        "ada lovelace",
        "ada/..",
        "ada\\x",
        "ada@host",
        "ada:1",
        "ada\n",
        "ada\0",
        "ada;",
    ] {
        assert!(!valid_user_name(name), "{name:?} should be refused");
    }
}
