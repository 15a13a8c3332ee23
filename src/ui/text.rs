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

/// Token pieces as lines of styled spans: each piece escaped (untrusted
/// text), a newline shown as `↵` ending its line, `style(i)` for piece `i`.
/// Stops after about `max_lines` lines.
pub fn token_lines(
    pieces: &[String],
    max_lines: usize,
    style: impl Fn(usize) -> ratatui::style::Style,
) -> Vec<ratatui::text::Line<'static>> {
    use ratatui::text::{Line, Span};
    let mut lines: Vec<Line> = Vec::new();
    let mut cur: Vec<Span> = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        let style = style(i);
        let mut buf = String::new();
        for c in piece.chars() {
            if c == '\n' {
                buf.push('↵');
                cur.push(Span::styled(std::mem::take(&mut buf), style));
                lines.push(Line::from(std::mem::take(&mut cur)));
            } else {
                crate::sanitize::escape_char(c, &mut buf);
            }
        }
        if !buf.is_empty() {
            cur.push(Span::styled(buf, style));
        }
        if lines.len() > max_lines {
            break;
        }
    }
    if !cur.is_empty() {
        lines.push(Line::from(cur));
    }
    lines
}

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
