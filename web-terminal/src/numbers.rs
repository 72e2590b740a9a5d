//! Decimal numbers for people and for CSS, written with integer
//! arithmetic. Rust's float printer (`{:.1}`, or `{}` of an `f64`) is
//! about 13 KB of wasm, a seventh of the page's whole budget, for the
//! handful of numbers the page prints: sizes, seconds and pixel offsets.

/// `value` with `places` digits after the point (at most 6), rounded half
/// away from zero: `fixed(1.25, 1)` is "1.3", `fixed(-0.5, 0)` is "-1".
/// Not-a-number and infinities, which no caller passes, print as 0.
pub fn fixed(value: f64, places: u32) -> String {
    let places = places.min(6);
    let scale = 10u64.pow(places);
    let scaled = (value.abs() * scale as f64).round();
    let n = if scaled.is_finite() { scaled as u64 } else { 0 };
    let sign = if value < 0.0 && n != 0 { "-" } else { "" };
    if places == 0 {
        return format!("{sign}{n}");
    }
    format!(
        "{sign}{}.{:0width$}",
        n / scale,
        n % scale,
        width = places as usize
    )
}

#[cfg(test)]
mod tests {
    use super::fixed;

    #[test]
    fn fixed_point_as_people_and_css_read_it() {
        assert_eq!(fixed(0.0, 1), "0.0");
        assert_eq!(fixed(1.25, 1), "1.3");
        assert_eq!(fixed(1.24, 1), "1.2");
        assert_eq!(fixed(12.0, 0), "12");
        assert_eq!(fixed(3.456_78, 3), "3.457");
        assert_eq!(fixed(0.05, 3), "0.050");
        assert_eq!(fixed(-0.04, 1), "0.0");
        assert_eq!(fixed(-0.5, 0), "-1");
        assert_eq!(fixed(-1.234, 2), "-1.23");
        assert_eq!(fixed(999.96, 1), "1000.0");
        assert_eq!(fixed(f64::NAN, 1), "0.0");
        assert_eq!(fixed(f64::INFINITY, 0), "0");
        assert_eq!(fixed(1.5, 9), "1.500000");
        // The same as the float printer wherever it does not round a tie.
        for tenths in 0..2000u32 {
            let v = f64::from(tenths) / 10.0 + 0.0123;
            assert_eq!(fixed(v, 1), format!("{v:.1}"), "{v}");
        }
    }
}
