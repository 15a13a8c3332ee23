//! Colour depth: what the terminal can show (from `COLORTERM` / `TERM`) and
//! the quantisation of RGB colours to the xterm 256-colour cube and grey
//! ramp or to the 16 named ANSI colours, so an RGB theme degrades instead of
//! emitting sequences the terminal garbles.

use ratatui::style::Color;

/// How many colours the terminal can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ColorDepth {
    Ansi16,
    Ansi256,
    TrueColor,
}

impl ColorDepth {
    /// From `COLORTERM` (truecolor/24bit) and `TERM` (`*-256color`).
    pub fn detect() -> ColorDepth {
        Self::from_env(
            std::env::var("COLORTERM").ok().as_deref(),
            std::env::var("TERM").ok().as_deref(),
        )
    }

    pub fn from_env(colorterm: Option<&str>, term: Option<&str>) -> ColorDepth {
        let ct = colorterm.unwrap_or("").to_ascii_lowercase();
        if ct == "truecolor" || ct == "24bit" {
            return ColorDepth::TrueColor;
        }
        let term = term.unwrap_or("").to_ascii_lowercase();
        if term.contains("256color") {
            ColorDepth::Ansi256
        } else {
            ColorDepth::Ansi16
        }
    }

    pub fn parse(s: &str) -> Option<ColorDepth> {
        match s {
            "ansi16" | "16" => Some(ColorDepth::Ansi16),
            "ansi256" | "256" => Some(ColorDepth::Ansi256),
            "truecolor" | "24bit" => Some(ColorDepth::TrueColor),
            _ => None,
        }
    }
}

/// The standard xterm RGB values of the 16 ANSI colours.
const ANSI16: [(Color, (u8, u8, u8)); 16] = [
    (Color::Black, (0, 0, 0)),
    (Color::Red, (205, 0, 0)),
    (Color::Green, (0, 205, 0)),
    (Color::Yellow, (205, 205, 0)),
    (Color::Blue, (0, 0, 238)),
    (Color::Magenta, (205, 0, 205)),
    (Color::Cyan, (0, 205, 205)),
    (Color::Gray, (229, 229, 229)),
    (Color::DarkGray, (127, 127, 127)),
    (Color::LightRed, (255, 0, 0)),
    (Color::LightGreen, (0, 255, 0)),
    (Color::LightYellow, (255, 255, 0)),
    (Color::LightBlue, (92, 92, 255)),
    (Color::LightMagenta, (255, 0, 255)),
    (Color::LightCyan, (0, 255, 255)),
    (Color::White, (255, 255, 255)),
];

fn rgb_of_index(i: u8) -> (u8, u8, u8) {
    match i {
        0..=15 => ANSI16[i as usize].1,
        16..=231 => {
            let i = i - 16;
            let level = |v: u8| if v == 0 { 0 } else { 55 + v * 40 };
            (level(i / 36), level((i / 6) % 6), level(i % 6))
        }
        _ => {
            let v = 8 + (i - 232) * 10;
            (v, v, v)
        }
    }
}

fn dist(a: (u8, u8, u8), b: (u8, u8, u8)) -> u32 {
    let d = |x: u8, y: u8| (x as i32 - y as i32).pow(2) as u32;
    d(a.0, b.0) + d(a.1, b.1) + d(a.2, b.2)
}

/// The nearest xterm-256 index of an RGB colour (cube or grey ramp).
pub fn nearest_256(r: u8, g: u8, b: u8) -> u8 {
    let step = |v: u8| -> u8 {
        if v < 48 {
            0
        } else if v < 115 {
            1
        } else {
            ((v as u16 - 35) / 40) as u8
        }
    };
    let cube = 16 + 36 * step(r) + 6 * step(g) + step(b);
    let avg = (r as u16 + g as u16 + b as u16) / 3;
    let grey = if avg > 238 {
        255
    } else {
        232 + (avg.saturating_sub(3) / 10).min(23) as u8
    };
    if dist(rgb_of_index(grey), (r, g, b)) < dist(rgb_of_index(cube), (r, g, b)) {
        grey
    } else {
        cube
    }
}

/// The nearest of the 16 named ANSI colours.
pub fn nearest_16(r: u8, g: u8, b: u8) -> Color {
    ANSI16
        .iter()
        .min_by_key(|(_, rgb)| dist(*rgb, (r, g, b)))
        .map(|(c, _)| *c)
        .unwrap_or(Color::Reset)
}

/// Maps a colour to what the terminal can show.
pub fn map_color(c: Color, depth: ColorDepth) -> Color {
    match (c, depth) {
        (_, ColorDepth::TrueColor) => c,
        (Color::Rgb(r, g, b), ColorDepth::Ansi256) => Color::Indexed(nearest_256(r, g, b)),
        (Color::Rgb(r, g, b), ColorDepth::Ansi16) => nearest_16(r, g, b),
        (Color::Indexed(i), ColorDepth::Ansi16) if i >= 16 => {
            let (r, g, b) = rgb_of_index(i);
            nearest_16(r, g, b)
        }
        (Color::Indexed(i), ColorDepth::Ansi16) => ANSI16[i as usize].0,
        _ => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping() {
        assert_eq!(nearest_256(255, 0, 0), 196);
        assert_eq!(nearest_256(128, 128, 128), 244);
        assert_eq!(nearest_16(250, 10, 10), Color::LightRed);
        assert_eq!(
            map_color(Color::Rgb(0, 0, 0), ColorDepth::Ansi16),
            Color::Black
        );
        assert_eq!(
            map_color(Color::Indexed(196), ColorDepth::Ansi16),
            Color::LightRed
        );
        assert_eq!(
            map_color(Color::Indexed(3), ColorDepth::Ansi16),
            Color::Yellow
        );
        assert_eq!(ColorDepth::parse("256"), Some(ColorDepth::Ansi256));
        assert_eq!(ColorDepth::parse("many"), None);
    }
}
