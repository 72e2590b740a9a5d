use super::*;

fn at(at_ms: u64, event: Event) -> TimedEvent {
    TimedEvent { at_ms, event }
}

#[test]
fn a_block_round_trips_its_events_and_times() {
    let events = vec![
        at(1_000, Event::Output(b"$ ls\r\n".to_vec())),
        at(
            1_000,
            Event::Resize(Size {
                cols: 100,
                rows: 30,
            }),
        ),
        at(
            61_250,
            Event::Marker("restored on h2 after h1 was lost".into()),
        ),
        at(61_300, Event::Output(vec![0xff, 0x1b, b'['])),
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
