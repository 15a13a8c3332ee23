//! Text helpers: wrapping escaped text by display width.

use unicode_width::UnicodeWidthChar;

/// Splits `s` (already escaped; `\n` kept) into lines of at most `width`
/// display cells. Breaks between characters; a wide character never splits.
pub fn wrap(s: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut out = Vec::new();
    for para in s.split('\n') {
        let mut line = String::new();
        let mut w = 0;
        for c in para.chars() {
            let cw = c.width().unwrap_or(0);
            if w + cw > width && !line.is_empty() {
                out.push(std::mem::take(&mut line));
                w = 0;
            }
            if cw > width {
                line.push('·');
                w += 1;
                continue;
            }
            line.push(c);
            w += cw;
        }
        out.push(line);
    }
    out
}

/// Human-friendly numbers: 1234 -> "1.2k", 2_500_000 -> "2.5M".
pub fn si(n: f64) -> String {
    let a = n.abs();
    if !n.is_finite() {
        "-".into()
    } else if a >= 1e9 {
        format!("{:.1}G", n / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", n / 1e6)
    } else if a >= 1e3 {
        format!("{:.1}k", n / 1e3)
    } else if a >= 10.0 || a == 0.0 {
        format!("{n:.0}")
    } else {
        format!("{n:.1}")
    }
}

/// Seconds as "1h02m", "3m12s", "45s" (the headless lines' format).
pub use crate::train::headless::fmt_duration as duration;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_by_width() {
        assert_eq!(wrap("abcdef", 4), vec!["abcd", "ef"]);
        assert_eq!(wrap("床前明月", 5), vec!["床前", "明月"]);
        assert_eq!(wrap("a\nb", 10), vec!["a", "b"]);
    }
}
