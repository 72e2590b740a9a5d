use super::*;
use proptest::prelude::*;

const NOW: u64 = 1_750_000_000_000;

fn claims() -> Claims {
    Claims {
        user: "alice".to_owned(),
        session: [0xab; 16],
        host: "h1".to_owned(),
        epoch: 3,
        login: [0x5c; 32],
        max_sessions: 10,
        share: None,
        record: None,
        issued_at_ms: NOW,
        expires_at_ms: NOW + MAX_LIFETIME_MS,
    }
}

fn signer() -> TicketSigner {
    TicketSigner::from_base64("BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc").unwrap()
}

fn verifier() -> TicketVerifier {
    TicketVerifier::new(vec![signer().public_key()])
}

fn decode(ticket: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(ticket).unwrap()
}

fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

#[test]
fn a_signed_ticket_verifies_to_its_claims() {
    let ticket = signer().sign(&claims()).unwrap();
    assert_eq!(verifier().verify(&ticket, NOW), Ok(claims()));
    assert!(ticket.len() < 250, "{} chars", ticket.len());
    assert!(
        ticket
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
    );
}

#[test]
fn the_text_form_is_pinned() {
    // The directory and hosts may run different builds during an upgrade;
    // a change here must come with a new TICKET_VERSION.
    let bytes = decode(&signer().sign(&claims()).unwrap());
    let mut expected = vec![TICKET_VERSION, 5];
    expected.extend_from_slice(b"alice");
    expected.extend_from_slice(&[0xab; 16]);
    expected.extend_from_slice(&[2, b'h', b'1', 3]);
    expected.extend_from_slice(&[0x5c; 32]);
    expected.push(10); // max_sessions
    expected.push(0); // share: None
    expected.push(0); // record: None
    // 1_750_000_000_000 and + 60_000 as postcard varints.
    expected.extend_from_slice(&[0x80, 0xb8, 0x83, 0xa1, 0xf7, 0x32]);
    expected.extend_from_slice(&[0xe0, 0x8c, 0x87, 0xa1, 0xf7, 0x32]);
    assert_eq!(&bytes[..bytes.len() - SIGNATURE_LEN], expected.as_slice());
    assert_eq!(bytes.len(), expected.len() + SIGNATURE_LEN);
}

#[test]
fn a_viewer_ticket_carries_its_grant() {
    let viewer = Claims {
        user: "bob".to_owned(),
        share: Some(ShareGrant {
            id: [7; 16],
            owner: "alice".to_owned(),
            may_type: true,
        }),
        ..claims()
    };
    let ticket = signer().sign(&viewer).unwrap();
    assert_eq!(verifier().verify(&ticket, NOW), Ok(viewer));
    assert!(ticket.len() < 300, "{} chars", ticket.len());
}

#[test]
fn keys_round_trip_through_base64() {
    let signer = TicketSigner::generate();
    let again = TicketSigner::from_base64(&signer.to_base64()).unwrap();
    assert_eq!(again.public_key(), signer.public_key());
    let public = signer.public_key();
    assert_eq!(
        TicketPublicKey::from_base64(&public.to_base64()),
        Ok(public.clone())
    );
    assert_eq!(
        public.to_string().parse::<TicketPublicKey>(),
        Ok(public.clone())
    );
    assert_ne!(TicketSigner::generate().public_key(), public);
}

#[test]
fn keys_are_accepted_in_standard_base64_too() {
    let seed = [0xfb_u8; 32];
    let standard = base64::engine::general_purpose::STANDARD.encode(seed);
    assert!(
        standard.contains('+') || standard.contains('/'),
        "{standard}"
    );
    let signer = TicketSigner::from_base64(&format!("{standard}\n")).unwrap();
    assert_eq!(signer.to_base64(), URL_SAFE_NO_PAD.encode(seed));
    let public = base64::engine::general_purpose::STANDARD.encode(signer.public_key().0.as_bytes());
    assert_eq!(
        TicketPublicKey::from_base64(&public),
        Ok(signer.public_key())
    );
}

#[test]
fn bad_keys_are_refused_with_a_reason() {
    assert_eq!(
        TicketSigner::from_base64("not base64!").unwrap_err(),
        KeyError::NotBase64
    );
    assert_eq!(
        TicketSigner::from_base64("AAAA").unwrap_err(),
        KeyError::WrongLength { found: 3 }
    );
    assert_eq!(
        TicketPublicKey::from_base64(&encode(&[0u8; 33])),
        Err(KeyError::WrongLength { found: 33 })
    );
    // The identity point: small order, so it would accept forged signatures
    // under lax rules.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    assert_eq!(
        TicketPublicKey::from_base64(&encode(&identity)),
        Err(KeyError::NotAPublicKey)
    );
    // y = 2 is not on the curve.
    let mut off_curve = [0u8; 32];
    off_curve[0] = 2;
    assert_eq!(
        TicketPublicKey::from_base64(&encode(&off_curve)),
        Err(KeyError::NotAPublicKey)
    );
}

#[test]
fn debug_never_shows_the_secret_seed() {
    let signer = TicketSigner::generate();
    let shown = format!("{signer:?}");
    assert!(!shown.contains(&signer.to_base64()), "{shown}");
    assert!(shown.contains(&signer.public_key().to_base64()), "{shown}");
}

#[test]
fn every_flipped_bit_is_refused() {
    let ticket = signer().sign(&claims()).unwrap();
    let bytes = decode(&ticket);
    let verifier = verifier();
    for index in 0..bytes.len() {
        for bit in 0..8 {
            let mut forged = bytes.clone();
            forged[index] ^= 1 << bit;
            let result = verifier.verify(&encode(&forged), NOW);
            let expected = if index == 0 {
                TicketError::UnknownVersion
            } else {
                TicketError::BadSignature
            };
            assert_eq!(result, Err(expected), "byte {index} bit {bit}");
        }
    }
}

#[test]
fn another_key_is_not_trusted_unless_listed() {
    let stranger = TicketSigner::generate();
    let ticket = stranger.sign(&claims()).unwrap();
    assert_eq!(
        verifier().verify(&ticket, NOW),
        Err(TicketError::BadSignature)
    );
    assert_eq!(
        TicketVerifier::new(Vec::new()).verify(&ticket, NOW),
        Err(TicketError::BadSignature)
    );
    // Rotation: old and new keys both listed.
    let both = TicketVerifier::new(vec![signer().public_key(), stranger.public_key()]);
    assert_eq!(both.verify(&ticket, NOW), Ok(claims()));
    assert_eq!(
        both.verify(&signer().sign(&claims()).unwrap(), NOW),
        Ok(claims())
    );
}

#[test]
fn the_validity_window_allows_the_clock_skew_and_no_more() {
    let ticket = signer().sign(&claims()).unwrap();
    let verifier = verifier();
    let expires = NOW + MAX_LIFETIME_MS;
    assert_eq!(verifier.verify(&ticket, NOW - CLOCK_SKEW_MS), Ok(claims()));
    assert_eq!(
        verifier.verify(&ticket, NOW - CLOCK_SKEW_MS - 1),
        Err(TicketError::NotYetValid)
    );
    assert_eq!(verifier.verify(&ticket, 0), Err(TicketError::NotYetValid));
    assert_eq!(
        verifier.verify(&ticket, expires + CLOCK_SKEW_MS - 1),
        Ok(claims())
    );
    assert_eq!(
        verifier.verify(&ticket, expires + CLOCK_SKEW_MS),
        Err(TicketError::Expired)
    );
    assert_eq!(
        verifier.verify(&ticket, u64::MAX),
        Err(TicketError::Expired)
    );
}

#[test]
fn a_lifetime_too_long_is_refused_when_signing() {
    let mut long = claims();
    long.expires_at_ms = long.issued_at_ms + MAX_LIFETIME_MS + 1;
    assert_eq!(signer().sign(&long), Err(TicketError::LifetimeTooLong));
    long.expires_at_ms = u64::MAX;
    assert_eq!(signer().sign(&long), Err(TicketError::LifetimeTooLong));
    let mut empty = claims();
    empty.expires_at_ms = empty.issued_at_ms;
    assert_eq!(signer().sign(&empty), Err(TicketError::Expired));
    empty.expires_at_ms = 0;
    assert_eq!(signer().sign(&empty), Err(TicketError::Expired));
}

/// Signs whatever bytes it is given as if it were a directory with a bug,
/// to reach the checks behind the signature.
fn sign_raw(body: &[u8]) -> String {
    let mut bytes = vec![TICKET_VERSION];
    bytes.extend_from_slice(body);
    let signature = signer().key.sign(&bytes);
    bytes.extend_from_slice(&signature.to_bytes());
    encode(&bytes)
}

#[test]
fn a_lifetime_too_long_is_refused_when_verifying() {
    let mut long = claims();
    long.expires_at_ms = long.issued_at_ms + MAX_LIFETIME_MS + 1;
    let ticket = sign_raw(&postcard::to_allocvec(&long).unwrap());
    assert_eq!(
        verifier().verify(&ticket, NOW),
        Err(TicketError::LifetimeTooLong)
    );
    let mut backwards = claims();
    backwards.expires_at_ms = backwards.issued_at_ms - 1;
    let ticket = sign_raw(&postcard::to_allocvec(&backwards).unwrap());
    assert_eq!(verifier().verify(&ticket, NOW), Err(TicketError::Expired));
}

#[test]
fn signed_garbage_is_malformed() {
    let verifier = verifier();
    let good = postcard::to_allocvec(&claims()).unwrap();
    let mut trailing = good.clone();
    trailing.push(0);
    for body in [
        &[][..],
        &[0],
        &good[..good.len() - 1],
        &trailing,
        &[0xff; 40],
    ] {
        assert_eq!(
            verifier.verify(&sign_raw(body), NOW),
            Err(TicketError::Malformed),
            "{body:?}"
        );
    }
}

#[test]
fn a_ticket_too_big_to_carry_is_not_signed() {
    let mut huge = claims();
    huge.user = "u".repeat(MAX_TICKET_LEN);
    assert_eq!(signer().sign(&huge), Err(TicketError::TooLong));
}

#[test]
fn garbage_of_every_kind_is_refused() {
    let verifier = verifier();
    let ticket = signer().sign(&claims()).unwrap();
    let bytes = decode(&ticket);
    let version_five = {
        let mut b = bytes.clone();
        b[0] = 5;
        encode(&b)
    };
    let cases: Vec<(String, TicketError)> = vec![
        (String::new(), TicketError::Malformed),
        ("A".to_owned(), TicketError::Malformed),
        ("BA".to_owned(), TicketError::Malformed),
        // Version 1, from before tickets carried the session cap, 2, from
        // before they carried a share's grant, and 3, from before they
        // said whether to record.
        ("AQ".to_owned(), TicketError::UnknownVersion),
        ("Ag".to_owned(), TicketError::UnknownVersion),
        ("Aw".to_owned(), TicketError::UnknownVersion),
        (encode(&[TICKET_VERSION; 64]), TicketError::Malformed),
        (encode(&[TICKET_VERSION; 65]), TicketError::Malformed),
        (encode(&[TICKET_VERSION; 66]), TicketError::BadSignature),
        (encode(&[0; 100]), TicketError::UnknownVersion),
        (version_five, TicketError::UnknownVersion),
        ("A".repeat(MAX_TICKET_LEN + 1), TicketError::TooLong),
        ("é".repeat(MAX_TICKET_LEN), TicketError::TooLong),
        (format!("{ticket}="), TicketError::Malformed),
        (format!("{ticket}=="), TicketError::Malformed),
        (format!(" {ticket}"), TicketError::Malformed),
        (format!("{ticket}\n"), TicketError::Malformed),
        (
            ticket.replace('-', "+").replace('_', "/"),
            TicketError::Malformed,
        ),
        // Zero bytes appended (four characters decode whole whatever the
        // ticket's length): the signature no longer covers what it precedes.
        (format!("{ticket}AAAA"), TicketError::BadSignature),
        ("\0".repeat(100), TicketError::Malformed),
        ("Bearer x".to_owned(), TicketError::Malformed),
    ];
    for (input, expected) in cases {
        if input == ticket {
            continue;
        }
        assert_eq!(verifier.verify(&input, NOW), Err(expected), "{input:?}");
    }
    // Cut anywhere: whether the rest still decodes depends on the length
    // and on stray bits, so only the refusal is certain.
    for cut in 0..ticket.len() {
        let result = verifier.verify(&ticket[..cut], NOW);
        assert!(
            matches!(
                result,
                Err(TicketError::Malformed | TicketError::BadSignature)
            ),
            "cut at {cut}: {result:?}"
        );
    }
}

#[test]
fn errors_read_as_plain_words() {
    for error in [
        TicketError::TooLong,
        TicketError::Malformed,
        TicketError::UnknownVersion,
        TicketError::BadSignature,
        TicketError::Expired,
        TicketError::NotYetValid,
        TicketError::LifetimeTooLong,
    ] {
        let text = error.to_string();
        assert!(text.starts_with("the ticket"), "{text}");
        assert!(!text.ends_with('.'), "{text}");
    }
}

#[test]
fn now_is_after_2024() {
    assert!(now_ms() > 1_704_067_200_000);
}

/// One edit of a ticket's text.
#[derive(Debug, Clone)]
enum Edit {
    Replace(usize, char),
    Insert(usize, char),
    Remove(usize),
    Truncate(usize),
    FlipBit(usize, u8),
}

fn apply(text: &str, edit: &Edit) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let at = |i: usize, len: usize| if len == 0 { 0 } else { i % len };
    match *edit {
        Edit::Replace(i, c) if !chars.is_empty() => {
            let i = at(i, chars.len());
            chars[i] = c;
        }
        Edit::Insert(i, c) => chars.insert(at(i, chars.len() + 1), c),
        Edit::Remove(i) if !chars.is_empty() => {
            chars.remove(at(i, chars.len()));
        }
        Edit::Truncate(n) => chars.truncate(n % (chars.len() + 1)),
        Edit::FlipBit(i, bit) if !chars.is_empty() => {
            let i = at(i, chars.len());
            let flipped = u32::from(chars[i]) ^ (1 << (bit % 8));
            chars[i] = char::from_u32(flipped).unwrap_or('\u{fffd}');
        }
        _ => {}
    }
    chars.into_iter().collect()
}

fn edit() -> impl Strategy<Value = Edit> {
    // Mostly characters of the base64url alphabet, so that edits decode and
    // reach the signature check, sometimes anything at all.
    let char = prop_oneof![
        4 => proptest::sample::select(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                .chars()
                .collect::<Vec<_>>()
        ),
        1 => any::<char>(),
    ];
    prop_oneof![
        (any::<usize>(), char.clone()).prop_map(|(i, c)| Edit::Replace(i, c)),
        (any::<usize>(), char).prop_map(|(i, c)| Edit::Insert(i, c)),
        any::<usize>().prop_map(Edit::Remove),
        any::<usize>().prop_map(Edit::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::FlipBit(i, b)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2048,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_text_is_refused_without_panicking(text in any::<String>(), now in any::<u64>()) {
        prop_assert!(verifier().verify(&text, now).is_err());
    }

    #[test]
    fn arbitrary_base64_is_refused_without_panicking(
        bytes in proptest::collection::vec(any::<u8>(), 0..800),
        version_one in any::<bool>(),
        now in any::<u64>(),
    ) {
        let mut bytes = bytes;
        if version_one && !bytes.is_empty() {
            bytes[0] = TICKET_VERSION;
        }
        prop_assert!(verifier().verify(&encode(&bytes), now).is_err());
    }

    #[test]
    fn arbitrary_signed_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..300)) {
        // Whatever the claims parser makes of them, it must answer.
        let _ = verifier().verify(&sign_raw(&body), NOW);
    }

    #[test]
    fn a_mutated_ticket_is_accepted_only_if_unchanged(
        edits in proptest::collection::vec(edit(), 1..4),
        user in "[a-z0-9._-]{1,64}",
        epoch in any::<u64>(),
    ) {
        let mut claims = claims();
        claims.user = user;
        claims.epoch = epoch;
        let ticket = signer().sign(&claims).unwrap();
        let mutated = edits.iter().fold(ticket.clone(), |text, edit| apply(&text, edit));
        let result = verifier().verify(&mutated, NOW);
        if mutated == ticket {
            prop_assert_eq!(result, Ok(claims));
        } else {
            prop_assert!(result.is_err(), "accepted {:?} for {:?}", mutated, ticket);
        }
    }
}
