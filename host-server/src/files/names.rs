//! File names of uploads and downloads, sans IO: what a name from the
//! user's machine becomes in their directory, the names an upload is
//! written under until it is complete, the next free name when one is
//! taken, and the headers that carry a name to the browser.

/// Longest file name Linux file systems take, in bytes.
pub const MAX_NAME: usize = 255;

/// The one path component a name from the browser may become: what
/// follows its last `/` or `\`, control characters replaced by `_`,
/// at most [`MAX_NAME`] bytes (cut in the stem, so the extension stays).
/// `.` and `..` and names with nothing left are refused.
pub fn safe_name(raw: &str) -> Result<String, String> {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or(raw);
    let cleaned: String = last
        .chars()
        .map(|c| if c.is_control() { '_' } else { c })
        .collect();
    let cleaned = cleaned.trim();
    if cleaned.is_empty() || cleaned == "." || cleaned == ".." {
        return Err(format!("{raw:?} is not a file name that can be written"));
    }
    Ok(fit(cleaned, MAX_NAME))
}

/// `name` cut to at most `max` bytes on a character boundary, in the stem
/// when it has a short extension.
fn fit(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_owned();
    }
    let (stem, ext) = split_extension(name);
    let ext = if ext.len() <= 16 { ext } else { "" };
    let mut cut = max - ext.len();
    while !stem.is_char_boundary(cut.min(stem.len())) {
        cut -= 1;
    }
    format!("{}{ext}", &stem[..cut.min(stem.len())])
}

/// `report.pdf` is `("report", ".pdf")`, `logs.tar.gz` is `("logs",
/// ".tar.gz")`; a leading dot is part of the stem (`.bashrc` has no
/// extension).
fn split_extension(name: &str) -> (&str, &str) {
    let Some(dot) = name.rfind('.').filter(|&at| at > 0) else {
        return (name, "");
    };
    let stem = &name[..dot];
    match stem.strip_suffix(".tar") {
        Some(base) if !base.is_empty() => (base, &name[base.len()..]),
        _ => (stem, &name[dot..]),
    }
}

/// The `n`th name to try for `name` when it is taken: `report.pdf`, then
/// `report (1).pdf`, `report (2).pdf`, as browsers name downloads.
pub fn numbered(name: &str, n: u32) -> String {
    if n == 0 {
        return name.to_owned();
    }
    let suffix = format!(" ({n})");
    let (stem, ext) = split_extension(name);
    let stem = fit(stem, MAX_NAME - suffix.len() - ext.len().min(MAX_NAME / 2));
    format!("{stem}{suffix}{ext}")
}

/// Marks the hidden file an upload is written to until its last byte is
/// in: `.report.pdf.thinline-1f2e3d4c.part`.
const PARTIAL_MARK: &str = ".thinline-";
const PARTIAL_END: &str = ".part";

/// The name an upload of `name` is written under; `tag` (8 hex digits)
/// tells two uploads of one name apart.
pub fn partial_name(name: &str, tag: u32) -> String {
    let tail = format!("{PARTIAL_MARK}{tag:08x}{PARTIAL_END}");
    let stem = fit(name, MAX_NAME - 1 - tail.len());
    format!(".{stem}{tail}")
}

/// Whether `component` is a name [`partial_name`] makes: the only files a
/// request to go on with an upload may name.
pub fn is_partial_name(component: &str) -> bool {
    let Some(rest) = component
        .strip_prefix('.')
        .and_then(|c| c.strip_suffix(PARTIAL_END))
    else {
        return false;
    };
    let Some(at) = rest.rfind(PARTIAL_MARK) else {
        return false;
    };
    let tag = &rest[at + PARTIAL_MARK.len()..];
    at > 0 && tag.len() == 8 && tag.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A `Content-Disposition` that makes the browser save the file as
/// `name`: an ASCII fallback for old browsers, and the exact name in
/// RFC 8187's `filename*`.
pub fn content_disposition(name: &str) -> String {
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

/// The bytes `[start, end]` of a file of `total` bytes that a
/// `Content-Range: bytes start-end/total` names; `None` for anything else.
pub fn content_range(header: &str) -> Option<(u64, u64, u64)> {
    let rest = header.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let number = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    let (start, end, total) = (number(start)?, number(end)?, number(total)?);
    (start <= end && end < total).then_some((start, end, total))
}

/// A size as people read it: `980 B`, `3.2 MB`, `1.1 GB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_one_safe_component() {
        assert_eq!(safe_name("notes.txt").as_deref(), Ok("notes.txt"));
        assert_eq!(safe_name("../../etc/passwd").as_deref(), Ok("passwd"));
        assert_eq!(
            safe_name("C:\\Users\\ada\\a b.pdf").as_deref(),
            Ok("a b.pdf")
        );
        assert_eq!(safe_name("bell\x07\nname").as_deref(), Ok("bell__name"));
        assert_eq!(safe_name("語 😀.txt").as_deref(), Ok("語 😀.txt"));
        assert_eq!(safe_name(".bashrc").as_deref(), Ok(".bashrc"));
        for bad in ["", ".", "..", "a/..", "dir/", "  ", "x/ "] {
            assert!(safe_name(bad).is_err(), "{bad:?}");
        }
        let long = format!("{}.tar.gz", "é".repeat(200));
        let fitted = safe_name(&long).unwrap();
        assert!(fitted.len() <= MAX_NAME, "{}", fitted.len());
        assert!(fitted.ends_with("é.tar.gz"), "{fitted}");
    }

    #[test]
    fn taken_names_are_numbered_before_the_extension() {
        assert_eq!(numbered("report.pdf", 0), "report.pdf");
        assert_eq!(numbered("report.pdf", 1), "report (1).pdf");
        assert_eq!(numbered("logs.tar.gz", 2), "logs (2).tar.gz");
        assert_eq!(numbered(".bashrc", 1), ".bashrc (1)");
        assert_eq!(numbered("Makefile", 3), "Makefile (3)");
        let long = "x".repeat(MAX_NAME);
        assert!(numbered(&long, 12).len() <= MAX_NAME);
    }

    #[test]
    fn partial_names_are_hidden_and_recognised() {
        let partial = partial_name("report.pdf", 0x1f2e_3d4c);
        assert_eq!(partial, ".report.pdf.thinline-1f2e3d4c.part");
        assert!(is_partial_name(&partial));
        assert!(partial_name(&"y".repeat(MAX_NAME), 1).len() <= MAX_NAME);
        assert!(is_partial_name(&partial_name(&"y".repeat(MAX_NAME), 1)));
        for not in [
            "report.pdf",
            ".bashrc",
            ".thinline-1f2e3d4c.part",
            ".a.thinline-1f2e3d4.part",
            ".a.thinline-1f2e3d4g.part",
            ".a.thinline-1f2e3d4c.partx",
        ] {
            assert!(!is_partial_name(not), "{not}");
        }
    }

    #[test]
    fn dispositions_carry_any_name_safely() {
        assert_eq!(
            content_disposition("a b.txt"),
            "attachment; filename=\"a b.txt\"; filename*=UTF-8''a%20b.txt"
        );
        let header = content_disposition("ü\"\r\n;.pdf");
        assert!(header.is_ascii());
        assert!(!header.contains(['\r', '\n']));
        assert!(header.contains("filename=\"____;.pdf\""), "{header}");
        assert!(header.ends_with("%C3%BC%22%0D%0A%3B.pdf"), "{header}");
    }

    #[test]
    fn content_ranges_are_read_strictly() {
        assert_eq!(content_range("bytes 0-99/100"), Some((0, 99, 100)));
        assert_eq!(
            content_range("bytes 5-5/1000000000000"),
            Some((5, 5, 1_000_000_000_000))
        );
        for bad in [
            "bytes 10-9/100",
            "bytes 0-100/100",
            "bytes */100",
            "bytes -1-2/3",
            "items 0-1/2",
            "bytes 0-1/",
            "bytes 0-99999999999999999999/100",
        ] {
            assert_eq!(content_range(bad), None, "{bad}");
        }
    }

    #[test]
    fn sizes_read_as_people_say_them() {
        assert_eq!(human_size(980), "980 B");
        assert_eq!(human_size(3_200_000), "3.2 MB");
        assert_eq!(human_size(1_073_741_824), "1.1 GB");
    }
}
