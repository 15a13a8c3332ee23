//! Colour themes as data: TOML files (the built-ins embedded with
//! `include_str!`, a user's own under the config dir), semantic accessors
//! (`title(focused)`, `heat(weight)`) and colour-depth mapping so an RGB theme
//! degrades to the 256- or 16-colour palette instead of emitting garbage.

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The built-in themes: name and TOML text.
pub const BUILTIN_THEMES: &[(&str, &str)] = &[
    ("dark", include_str!("../../themes/dark.toml")),
    ("light", include_str!("../../themes/light.toml")),
    ("ansi16", include_str!("../../themes/ansi16.toml")),
];

/// Shade characters for the 16-colour heatmap, weight 0 to 1.
pub const SHADES: [&str; 5] = [" ", "░", "▒", "▓", "█"];

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ThemeError {
    #[error("unknown theme `{name}`; available: {available}")]
    Unknown { name: String, available: String },
    #[error("theme {source_name}: {message}")]
    Invalid {
        source_name: String,
        message: String,
    },
    #[error("cannot read theme {path}: {message}")]
    Read { path: PathBuf, message: String },
}

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

    fn parse(s: &str) -> Option<ColorDepth> {
        match s {
            "ansi16" | "16" => Some(ColorDepth::Ansi16),
            "ansi256" | "256" => Some(ColorDepth::Ansi256),
            "truecolor" | "24bit" => Some(ColorDepth::TrueColor),
            _ => None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    name: Option<String>,
    /// Caps the colour depth (e.g. "ansi16" for a theme of named colours only).
    depth: Option<String>,
    #[serde(default)]
    colors: BTreeMap<String, toml::Value>,
}

/// A loaded theme. Colours are already mapped to the terminal's depth.
#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub name: String,
    pub depth: ColorDepth,
    fg: Color,
    bg: Color,
    muted: Color,
    border: Color,
    border_focused: Color,
    title: Color,
    title_focused: Color,
    accent: Color,
    selection_fg: Color,
    selection_bg: Color,
    ok: Color,
    warn: Color,
    error: Color,
    loss_train: Color,
    loss_smooth: Color,
    eval_train: Color,
    eval_val: Color,
    lr: Color,
    token_a: (Color, Color),
    token_b: (Color, Color),
    gauge: Color,
    prompt: Color,
    generated: Color,
    /// Gradient stops as written (unmapped), weight 0 to 1.
    heat: Vec<Color>,
}

const COLOR_KEYS: &[&str] = &[
    "fg",
    "bg",
    "muted",
    "border",
    "border_focused",
    "title",
    "title_focused",
    "accent",
    "selection_fg",
    "selection_bg",
    "ok",
    "warn",
    "error",
    "loss_train",
    "loss_smooth",
    "eval_train",
    "eval_val",
    "lr",
    "token_a",
    "token_a_bg",
    "token_b",
    "token_b_bg",
    "gauge",
    "prompt",
    "generated",
    "heat",
];

impl Default for Theme {
    fn default() -> Self {
        // The embedded dark theme always parses (a test checks it).
        Theme::from_toml(BUILTIN_THEMES[0].1, "dark", ColorDepth::TrueColor)
            .unwrap_or_else(|_| Theme::fallback())
    }
}

impl Theme {
    fn fallback() -> Theme {
        Theme {
            name: "fallback".into(),
            depth: ColorDepth::Ansi16,
            fg: Color::Reset,
            bg: Color::Reset,
            muted: Color::Gray,
            border: Color::DarkGray,
            border_focused: Color::Cyan,
            title: Color::Gray,
            title_focused: Color::Cyan,
            accent: Color::Yellow,
            selection_fg: Color::Black,
            selection_bg: Color::Cyan,
            ok: Color::Green,
            warn: Color::Yellow,
            error: Color::Red,
            loss_train: Color::Blue,
            loss_smooth: Color::Cyan,
            eval_train: Color::Green,
            eval_val: Color::Red,
            lr: Color::Magenta,
            token_a: (Color::White, Color::Blue),
            token_b: (Color::Black, Color::Cyan),
            gauge: Color::Cyan,
            prompt: Color::Yellow,
            generated: Color::Reset,
            heat: vec![
                Color::Black,
                Color::Blue,
                Color::Red,
                Color::Yellow,
                Color::White,
            ],
        }
    }

    /// Parses a theme's TOML; `source_name` names it in errors. Colours are
    /// mapped to `depth` (or the theme's own `depth` cap, if lower).
    pub fn from_toml(
        text: &str,
        source_name: &str,
        depth: ColorDepth,
    ) -> Result<Theme, ThemeError> {
        let invalid = |message: String| ThemeError::Invalid {
            source_name: source_name.to_string(),
            message: message.replace('\n', " "),
        };
        let file: ThemeFile = toml::from_str(text).map_err(|e| invalid(e.message().to_string()))?;
        let mut depth = depth;
        if let Some(d) = &file.depth {
            let cap = ColorDepth::parse(d).ok_or_else(|| {
                invalid(format!(
                    "depth `{d}` is unknown; use ansi16, ansi256 or truecolor"
                ))
            })?;
            depth = depth.min(cap);
        }
        for key in file.colors.keys() {
            if !COLOR_KEYS.contains(&key.as_str()) {
                return Err(invalid(format!(
                    "unknown colour `{key}`; known: {}",
                    COLOR_KEYS.join(", ")
                )));
            }
        }
        let get = |key: &str| -> Result<Color, ThemeError> {
            match file.colors.get(key) {
                None => Err(invalid(format!("missing colour `{key}`"))),
                Some(toml::Value::String(s)) => parse_color(s)
                    .map(|c| map_color(c, depth))
                    .ok_or_else(|| invalid(format!("colour {key} = {s:?} is not a colour; use \"#rrggbb\" or a name like \"red\""))),
                Some(v) => Err(invalid(format!("colour {key} must be a string, got {v}"))),
            }
        };
        let heat = match file.colors.get("heat") {
            Some(toml::Value::Array(stops)) if stops.len() >= 2 => stops
                .iter()
                .map(|v| v.as_str().and_then(parse_color))
                .collect::<Option<Vec<Color>>>()
                .ok_or_else(|| invalid("heat must be a list of colour strings".into()))?,
            _ => {
                return Err(invalid(
                    "heat must be a list of at least two colours".into(),
                ))
            }
        };
        Ok(Theme {
            name: file.name.unwrap_or_else(|| source_name.to_string()),
            depth,
            fg: get("fg")?,
            bg: get("bg")?,
            muted: get("muted")?,
            border: get("border")?,
            border_focused: get("border_focused")?,
            title: get("title")?,
            title_focused: get("title_focused")?,
            accent: get("accent")?,
            selection_fg: get("selection_fg")?,
            selection_bg: get("selection_bg")?,
            ok: get("ok")?,
            warn: get("warn")?,
            error: get("error")?,
            loss_train: get("loss_train")?,
            loss_smooth: get("loss_smooth")?,
            eval_train: get("eval_train")?,
            eval_val: get("eval_val")?,
            lr: get("lr")?,
            token_a: (get("token_a")?, get("token_a_bg")?),
            token_b: (get("token_b")?, get("token_b_bg")?),
            gauge: get("gauge")?,
            prompt: get("prompt")?,
            generated: get("generated")?,
            heat,
        })
    }

    /// A built-in theme by name.
    pub fn builtin(name: &str, depth: ColorDepth) -> Result<Theme, ThemeError> {
        let (_, text) = BUILTIN_THEMES
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| ThemeError::Unknown {
                name: name.to_string(),
                available: Self::available(None).join(", "),
            })?;
        Theme::from_toml(text, name, depth)
    }

    /// The user's theme folder: `<config_dir>/themes/`.
    pub fn user_dir() -> Option<PathBuf> {
        directories::ProjectDirs::from("", "", "headsup").map(|d| d.config_dir().join("themes"))
    }

    /// Names of the built-ins plus `*.toml` files in `user_dir`.
    pub fn available(user_dir: Option<&Path>) -> Vec<String> {
        let mut names: Vec<String> = BUILTIN_THEMES.iter().map(|(n, _)| n.to_string()).collect();
        if let Some(dir) = user_dir {
            if let Ok(entries) = std::fs::read_dir(dir) {
                for e in entries.flatten() {
                    let p = e.path();
                    if p.extension().and_then(|x| x.to_str()) == Some("toml") {
                        if let Some(stem) = p.file_stem().and_then(|s| s.to_str()) {
                            if !names.iter().any(|n| n == stem) {
                                names.push(stem.to_string());
                            }
                        }
                    }
                }
            }
        }
        names.sort();
        names
    }

    /// Loads `name`: a file path if it ends in `.toml`, else
    /// `<user_dir>/<name>.toml` if it exists, else a built-in.
    pub fn load(
        name: &str,
        user_dir: Option<&Path>,
        depth: ColorDepth,
    ) -> Result<Theme, ThemeError> {
        if name.ends_with(".toml") {
            let path = Path::new(name);
            let text = std::fs::read_to_string(path).map_err(|e| ThemeError::Read {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
            return Theme::from_toml(&text, &path.display().to_string(), depth);
        }
        let safe_name = !name.is_empty() && !name.contains(['/', '\\']) && !name.starts_with('.');
        if let (Some(dir), true) = (user_dir, safe_name) {
            let path = dir.join(format!("{name}.toml"));
            if path.is_file() {
                let text = std::fs::read_to_string(&path).map_err(|e| ThemeError::Read {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
                return Theme::from_toml(&text, &path.display().to_string(), depth);
            }
        }
        Theme::builtin(name, depth).map_err(|e| match e {
            ThemeError::Unknown { name, .. } => ThemeError::Unknown {
                name,
                available: Self::available(user_dir).join(", "),
            },
            other => other,
        })
    }

    pub fn base(&self) -> Style {
        Style::default().fg(self.fg).bg(self.bg)
    }
    pub fn text(&self) -> Style {
        Style::default().fg(self.fg)
    }
    pub fn muted(&self) -> Style {
        Style::default().fg(self.muted)
    }
    pub fn border(&self, focused: bool) -> Style {
        Style::default().fg(if focused {
            self.border_focused
        } else {
            self.border
        })
    }
    pub fn title(&self, focused: bool) -> Style {
        if focused {
            Style::default()
                .fg(self.title_focused)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::default().fg(self.title)
        }
    }
    pub fn accent(&self) -> Style {
        Style::default().fg(self.accent)
    }
    pub fn selection(&self) -> Style {
        Style::default().fg(self.selection_fg).bg(self.selection_bg)
    }
    pub fn ok(&self) -> Style {
        Style::default().fg(self.ok)
    }
    pub fn warn(&self) -> Style {
        Style::default().fg(self.warn)
    }
    pub fn error(&self) -> Style {
        Style::default().fg(self.error).add_modifier(Modifier::BOLD)
    }
    pub fn loss_train(&self) -> Color {
        self.loss_train
    }
    pub fn loss_smooth(&self) -> Color {
        self.loss_smooth
    }
    pub fn eval_train(&self) -> Color {
        self.eval_train
    }
    pub fn eval_val(&self) -> Color {
        self.eval_val
    }
    pub fn lr(&self) -> Color {
        self.lr
    }
    pub fn gauge(&self) -> Color {
        self.gauge
    }
    pub fn prompt(&self) -> Style {
        Style::default()
            .fg(self.prompt)
            .add_modifier(Modifier::BOLD)
    }
    pub fn generated(&self) -> Style {
        Style::default().fg(self.generated)
    }
    /// Alternating styles for tokenizer pieces.
    pub fn token(&self, index: usize) -> Style {
        let (fg, bg) = if index.is_multiple_of(2) {
            self.token_a
        } else {
            self.token_b
        };
        Style::default().fg(fg).bg(bg)
    }

    /// The heatmap colour of an attention weight in [0, 1].
    pub fn heat(&self, weight: f32) -> Color {
        let w = if weight.is_finite() {
            weight.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let n = self.heat.len();
        if n == 0 {
            return Color::Reset;
        }
        let all_rgb = self.heat.iter().all(|c| matches!(c, Color::Rgb(..)));
        if !all_rgb || self.depth == ColorDepth::Ansi16 {
            // Pick a stop; named stops cannot be blended.
            let idx = ((w * (n - 1) as f32).round() as usize).min(n - 1);
            return map_color(self.heat[idx], self.depth);
        }
        let pos = w * (n - 1) as f32;
        let i = (pos.floor() as usize).min(n - 2);
        let t = pos - i as f32;
        let (Color::Rgb(r0, g0, b0), Color::Rgb(r1, g1, b1)) = (self.heat[i], self.heat[i + 1])
        else {
            return Color::Reset;
        };
        let lerp = |a: u8, b: u8| {
            (a as f32 + (b as f32 - a as f32) * t)
                .round()
                .clamp(0.0, 255.0) as u8
        };
        map_color(
            Color::Rgb(lerp(r0, r1), lerp(g0, g1), lerp(b0, b1)),
            self.depth,
        )
    }

    /// The cell symbol of a weight: a full block when colours carry the
    /// weight, shade characters on a 16-colour terminal.
    pub fn heat_symbol(&self, weight: f32) -> &'static str {
        if self.depth != ColorDepth::Ansi16 {
            return "█";
        }
        let w = if weight.is_finite() {
            weight.clamp(0.0, 1.0)
        } else {
            0.0
        };
        SHADES[((w * 4.0).round() as usize).min(4)]
    }
}

/// Parses "#rrggbb", a named colour, an index, or "reset".
pub fn parse_color(s: &str) -> Option<Color> {
    Color::from_str(s.trim()).ok()
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
    fn builtins_load_at_every_depth() {
        for (name, _) in BUILTIN_THEMES {
            for d in [
                ColorDepth::Ansi16,
                ColorDepth::Ansi256,
                ColorDepth::TrueColor,
            ] {
                Theme::builtin(name, d).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
        }
    }

    #[test]
    fn mapping() {
        assert_eq!(nearest_256(255, 0, 0), 196);
        assert_eq!(nearest_256(128, 128, 128), 244);
        assert_eq!(nearest_16(250, 10, 10), Color::LightRed);
        assert_eq!(
            map_color(Color::Rgb(0, 0, 0), ColorDepth::Ansi16),
            Color::Black
        );
    }
}
