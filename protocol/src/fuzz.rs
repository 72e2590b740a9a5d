//! Property-based fuzzing of everything a host or client decodes from the
//! network. Run by `cargo test` with a fixed number of cases, so CI is
//! bounded; raise `PROPTEST_CASES` for a longer hunt.
//!
//! The property is the security floor's: any bytes at all produce a value
//! or an error, never a panic, and whatever decodes survives a round trip
//! through the encoder unchanged.

use proptest::prelude::*;

use crate::*;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 4096,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Bytes shaped like real messages: a valid variant tag up front makes the
/// decoder go deep instead of failing at the first byte.
fn message_like() -> impl Strategy<Value = Vec<u8>> {
    (0u8..8, proptest::collection::vec(any::<u8>(), 0..256)).prop_map(|(tag, mut rest)| {
        rest.insert(0, tag);
        rest
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn client_messages_never_panic(bytes in message_like()) {
        if let Ok(msg) = decode_client(&bytes) {
            prop_assert_eq!(decode_client(&encode_client(&msg)), Ok(msg));
        }
    }

    #[test]
    fn server_messages_never_panic(bytes in message_like()) {
        if let Ok(msg) = decode_server(&bytes) {
            // History blocks are decompressed lazily; make that path run too.
            if let ServerToClientMsg::History { lines, .. } = &msg {
                let _ = decompress_lines(lines);
            }
            prop_assert_eq!(decode_server(&encode_server(&msg)), Ok(msg));
        }
    }

    #[test]
    fn hellos_never_panic(body in proptest::collection::vec(any::<u8>(), 0..128), version in 0u16..4) {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&version.to_le_bytes());
        bytes.extend_from_slice(&body);
        match decode_hello(&bytes) {
            Ok(hello) => {
                prop_assert_eq!(version, PROTOCOL_VERSION);
                prop_assert_eq!(decode_hello(&encode_hello(&hello)), Ok(hello));
            }
            Err(DecodeError::VersionMismatch { client, .. }) => prop_assert_eq!(client, version),
            Err(_) => {}
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_hello(&bytes);
        let _ = decode_client(&bytes);
        let _ = decode_server(&bytes);
    }

    #[test]
    fn valid_inputs_round_trip(seq in any::<u64>(), data in proptest::collection::vec(any::<u8>(), 0..64)) {
        let msg = ClientToServerMsg::Input { seq, data };
        prop_assert_eq!(decode_client(&encode_client(&msg)), Ok(msg));
    }
}
