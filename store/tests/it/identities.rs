//! How uid ranges are written in settings (`store::UidRange`).

use store::{MAX_UNIX_ID, UidRange};

#[test]
fn a_range_is_first_dash_last() {
    let range: UidRange = "200000-299999".parse().unwrap();
    assert_eq!(
        range,
        UidRange {
            first: 200_000,
            last: 299_999
        }
    );
    assert_eq!(range.to_string(), "200000-299999");
    assert!(range.contains(200_000) && range.contains(299_999));
    assert!(!range.contains(199_999) && !range.contains(300_000));

    let one: UidRange = "1-1".parse().unwrap();
    assert_eq!((one.first, one.last), (1, 1));
    let top: UidRange = "4294967294-4294967294".parse().unwrap();
    assert_eq!((top.first, top.last), (MAX_UNIX_ID, MAX_UNIX_ID));
    // Round trip.
    assert_eq!(top.to_string().parse::<UidRange>().unwrap(), top);
}

#[test]
fn other_ranges_are_refused_saying_what_a_range_is() {
    for (text, reason) in [
        ("", "not two numbers"),
        ("200000", "not two numbers"),
        ("200000:299999", "not two numbers"),
        ("-299999", "\"\" is not a number"),
        ("200000-", "\"\" is not a number"),
        ("200000-299999-3", "\"299999-3\" is not a number"),
        ("+200000-299999", "\"+200000\" is not a number"),
        (" 200000-299999", "\" 200000\" is not a number"),
        ("200000-299999 ", "\"299999 \" is not a number"),
        ("2e5-3e5", "\"2e5\" is not a number"),
        ("200000-4294967296", "\"4294967296\" is not a number"),
        ("0-299999", "starts at 0, which is root"),
        ("0-0", "starts at 0, which is root"),
        ("299999-200000", "FIRST is greater than LAST"),
        ("200000-4294967295", "(uid_t) -1"),
    ] {
        let error = text.parse::<UidRange>().unwrap_err().to_string();
        assert!(
            error.starts_with(&format!("invalid uid range {text:?}: ")),
            "{text:?}: {error}"
        );
        assert!(error.contains(reason), "{text:?}: {error}");
        assert!(
            error.ends_with(
                "use FIRST-LAST, e.g. 200000-299999, with 1 <= FIRST <= LAST <= 4294967294"
            ),
            "{text:?}: {error}"
        );
    }
}
