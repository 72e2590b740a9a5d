use super::*;
use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Params};

#[test]
fn a_hash_verifies_its_password_and_nothing_else() {
    let phc = hash("correct horse").unwrap();
    assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
    assert!(verify("correct horse", &phc));
    assert!(!verify("correct horsE", &phc));
    assert!(!verify("", &phc));
}

#[test]
fn each_hash_has_its_own_salt() {
    let a = hash("same password").unwrap();
    let b = hash("same password").unwrap();
    assert_ne!(a, b);
    assert!(verify("same password", &a) && verify("same password", &b));
}

#[test]
fn unparsable_hashes_never_verify() {
    for phc in [
        "",
        "plaintext",
        "$argon2id$",
        "$argon2id$v=19$m=19456,t=2,p=1$",
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ",
        "$bcrypt$v=19$m=19456,t=2,p=1$c3lA/9C4nPBVzZqOyl9yoQ$QdR3Vxxm1ya2w8wQs1s9EH4g/0Yu8D4Otla8ptgpnHc",
        "$argon2id$v=19$m=1,t=2,p=1$c3lA/9C4nPBVzZqOyl9yoQ$QdR3Vxxm1ya2w8wQs1s9EH4g/0Yu8D4Otla8ptgpnHc",
    ] {
        assert!(!verify("thinline dummy password", phc), "{phc:?} verified");
    }
}

#[test]
fn length_limits_are_enforced_in_characters_and_bytes() {
    assert_eq!(hash(""), Err(PasswordError::TooShort));
    assert_eq!(hash("1234567"), Err(PasswordError::TooShort));
    // Eight characters, more than eight bytes: long enough.
    assert!(hash("ééééééé").is_err());
    assert!(hash("éééééééé").is_ok());
    assert!(hash(&"x".repeat(MAX_LEN)).is_ok());
    assert_eq!(hash(&"x".repeat(MAX_LEN + 1)), Err(PasswordError::TooLong));
    assert!(!verify(&"x".repeat(MAX_LEN + 1), DUMMY_PHC));
}

#[test]
fn the_dummy_hash_costs_what_a_real_one_costs() {
    // verify_dummy only hides timing if its hash parses and uses the very
    // parameters `hash` uses today.
    assert!(verify("thinline dummy password", DUMMY_PHC));
    let dummy = PasswordHash::new(DUMMY_PHC).unwrap();
    let fresh_text = hash("another password").unwrap();
    let fresh = PasswordHash::new(&fresh_text).unwrap();
    assert_eq!(dummy.algorithm, fresh.algorithm);
    assert_eq!(dummy.algorithm.as_str(), Algorithm::Argon2id.as_str());
    assert_eq!(
        Params::try_from(&dummy).unwrap(),
        Params::try_from(&fresh).unwrap()
    );
    verify_dummy("anything at all");
}
