use super::*;
use crate::recording::testing::{marker, out, resize};

#[test]
fn a_block_round_trips_its_events_and_times() {
    let events = vec![
        out(1_000, b"$ ls\r\n"),
        resize(1_000, 100, 30),
        marker(61_250, "restored on h2 after h1 was lost"),
        out(61_300, &[0xff, 0x1b, b'[']),
    ];
    let block = encode_block(&events);
    assert_eq!(decode_block(&block), Ok(events));
}

#[test]
fn garbage_is_refused_not_trusted() {
    assert!(matches!(decode_block(&[]), Err(BlockError::Damaged(_))));
    assert_eq!(decode_block(&[9, 1, 2]), Err(BlockError::UnknownVersion(9)));
    assert!(matches!(decode_block(&[1, 1]), Err(BlockError::Damaged(_))));
    // A size far beyond any block is not allocated.
    let mut huge = vec![1];
    huge.extend_from_slice(&u32::MAX.to_le_bytes());
    huge.extend_from_slice(&[0; 16]);
    assert!(matches!(decode_block(&huge), Err(BlockError::Damaged(_))));
}
