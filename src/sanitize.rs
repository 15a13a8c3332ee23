//! Untrusted text (datasets, generated tokens) made safe for a terminal:
//! control characters, escape sequences, bidi overrides and zero-width
//! characters are shown escaped; display width is measured with unicode-width.

use unicode_width::UnicodeWidthChar;

/// True for characters that must never reach the terminal raw.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200B}'..='\u{200F}' // zero-width, LRM/RLM
            | '\u{202A}'..='\u{202E}' // bidi embeddings and overrides
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}' // bidi isolates
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}')
}

/// Escapes one character for display: `\n` as `↵`, tab as `→`, others as `\u{..}`-style.
pub fn escape_char(c: char, out: &mut String) {
    match c {
        '\n' => out.push('↵'),
        '\t' => out.push('→'),
        '\r' => out.push_str("\\r"),
        '\x1b' => out.push_str("\\e"),
        c if (c as u32) < 0x20 => {
            out.push('^');
            out.push(((c as u8) + 0x40) as char);
        }
        c if is_unsafe(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        c => out.push(c),
    }
}

/// The whole string escaped for one-line display.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        escape_char(c, &mut out);
    }
    out
}

/// Escaped for multi-line display: newlines kept, everything else as `escape`.
pub fn escape_keep_newlines(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == '\n' {
            out.push('\n');
        } else {
            escape_char(c, &mut out);
        }
    }
    out
}

/// Display width in terminal cells.
pub fn width(s: &str) -> usize {
    s.chars().map(|c| c.width().unwrap_or(0)).sum()
}

/// Cuts `s` to at most `max` cells of display width.
pub fn truncate_to_width(s: &str, max: usize) -> String {
    let mut w = 0;
    let mut out = String::new();
    for c in s.chars() {
        let cw = c.width().unwrap_or(0);
        if w + cw > max {
            break;
        }
        w += cw;
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_terminal_controls() {
        let s = escape("a\x1b[31mred\x07\u{202E}x\u{200B}\r\x08");
        assert!(!s.chars().any(is_unsafe), "{s:?}");
        assert_eq!(s, "a\\e[31mred^G\\u{202e}x\\u{200b}\\r^H");
    }

    #[test]
    fn cjk_width() {
        assert_eq!(width("床前明月光"), 10);
        assert_eq!(truncate_to_width("床前明月光", 5), "床前");
    }
}
