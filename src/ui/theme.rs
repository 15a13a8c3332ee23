//! Colour themes as data: TOML files (the built-ins embedded with
//! `include_str!`, a user's own under the config dir) read by serde into one
//! `Colors` struct (the colour list is written once, there), and semantic
//! accessors (`title(focused)`, `heat(weight)`) that map each colour to the
//! terminal's depth (`super::palette`).

pub use super::palette::{map_color, nearest_16, nearest_256, ColorDepth};
use ratatui::style::{Color, Modifier, Style};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
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

/// One theme colour as written: "#rrggbb", a named ANSI colour, an xterm
/// index or "reset".
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThemeColor(pub Color);

impl<'de> Deserialize<'de> for ThemeColor {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_color(&s).map(ThemeColor).ok_or_else(|| {
            D::Error::custom(format!(
                "{s:?} is not a colour; use \"#rrggbb\" or a name like \"red\""
            ))
        })
    }
}

/// The `[colors]` table: every colour a theme must set. Unknown keys are an
/// error naming the key.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Colors {
    pub fg: ThemeColor,
    pub bg: ThemeColor,
    pub muted: ThemeColor,
    pub border: ThemeColor,
    pub border_focused: ThemeColor,
    pub title: ThemeColor,
    pub title_focused: ThemeColor,
    pub accent: ThemeColor,
    pub selection_fg: ThemeColor,
    pub selection_bg: ThemeColor,
    pub ok: ThemeColor,
    pub warn: ThemeColor,
    pub error: ThemeColor,
    pub loss_train: ThemeColor,
    pub loss_smooth: ThemeColor,
    pub eval_train: ThemeColor,
    pub eval_val: ThemeColor,
    pub lr: ThemeColor,
    pub token_a: ThemeColor,
    pub token_a_bg: ThemeColor,
    pub token_b: ThemeColor,
    pub token_b_bg: ThemeColor,
    pub gauge: ThemeColor,
    pub prompt: ThemeColor,
    pub generated: ThemeColor,
    /// Heatmap gradient stops from weight 0 to weight 1 (at least two).
    pub heat: Vec<ThemeColor>,
}

impl Default for Colors {
    /// Named ANSI colours only: what any terminal shows.
    fn default() -> Self {
        let c = ThemeColor;
        Colors {
            fg: c(Color::Reset),
            bg: c(Color::Reset),
            muted: c(Color::Gray),
            border: c(Color::DarkGray),
            border_focused: c(Color::Cyan),
            title: c(Color::Gray),
            title_focused: c(Color::Cyan),
            accent: c(Color::Yellow),
            selection_fg: c(Color::Black),
            selection_bg: c(Color::Cyan),
            ok: c(Color::Green),
            warn: c(Color::Yellow),
            error: c(Color::Red),
            loss_train: c(Color::Blue),
            loss_smooth: c(Color::Cyan),
            eval_train: c(Color::Green),
            eval_val: c(Color::Red),
            lr: c(Color::Magenta),
            token_a: c(Color::White),
            token_a_bg: c(Color::Blue),
            token_b: c(Color::Black),
            token_b_bg: c(Color::Cyan),
            gauge: c(Color::Cyan),
            prompt: c(Color::Yellow),
            generated: c(Color::Reset),
            heat: [
                Color::Black,
                Color::Blue,
                Color::Red,
                Color::Yellow,
                Color::White,
            ]
            .map(ThemeColor)
            .to_vec(),
        }
    }
}

/// A theme file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    #[serde(default)]
    name: Option<String>,
    /// Caps the colour depth (e.g. "ansi16" for a theme of named colours only).
    #[serde(default)]
    depth: Option<String>,
    colors: Colors,
}

/// A loaded theme: its colours as written and the depth they are shown at.
#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub name: String,
    pub depth: ColorDepth,
    colors: Colors,
}

impl Default for Theme {
    fn default() -> Self {
        // The embedded dark theme always parses (a test checks it).
        Theme::from_toml(BUILTIN_THEMES[0].1, "dark", ColorDepth::TrueColor).unwrap_or_else(|_| {
            Theme {
                name: "fallback".into(),
                depth: ColorDepth::Ansi16,
                colors: Colors::default(),
            }
        })
    }
}

/// A TOML error on one line: the message and, when it points somewhere, the
/// line number and the line itself (which names the key).
fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().replace('\n', " ");
    let Some(span) = e.span() else {
        return msg;
    };
    let start = span.start.min(text.len());
    let Some(before) = text.get(..start) else {
        return msg;
    };
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[line_start..]
        .find('\n')
        .map_or(text.len(), |i| line_start + i);
    let line = crate::sanitize::truncate_to_width(text[line_start..line_end].trim(), 60);
    let line_no = before.matches('\n').count() + 1;
    format!("line {line_no} `{line}`: {msg}")
}

impl Theme {
    /// Parses a theme's TOML; `source_name` names it in errors. Colours are
    /// shown at `depth` (or the theme's own `depth` cap, if lower).
    pub fn from_toml(
        text: &str,
        source_name: &str,
        depth: ColorDepth,
    ) -> Result<Theme, ThemeError> {
        let invalid = |message: String| ThemeError::Invalid {
            source_name: source_name.to_string(),
            message: message.replace('\n', " "),
        };
        let file: ThemeFile = toml::from_str(text).map_err(|e| invalid(toml_error(text, &e)))?;
        let mut depth = depth;
        if let Some(d) = &file.depth {
            let cap = ColorDepth::parse(d).ok_or_else(|| {
                invalid(format!(
                    "depth `{d}` is unknown; use ansi16, ansi256 or truecolor"
                ))
            })?;
            depth = depth.min(cap);
        }
        if file.colors.heat.len() < 2 {
            return Err(invalid(
                "heat must be a list of at least two colours".into(),
            ));
        }
        Ok(Theme {
            name: file.name.unwrap_or_else(|| source_name.to_string()),
            depth,
            colors: file.colors,
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

    /// A theme colour as the terminal can show it.
    fn c(&self, c: ThemeColor) -> Color {
        map_color(c.0, self.depth)
    }
    pub fn base(&self) -> Style {
        Style::default()
            .fg(self.c(self.colors.fg))
            .bg(self.c(self.colors.bg))
    }
    pub fn text(&self) -> Style {
        Style::default().fg(self.c(self.colors.fg))
    }
    pub fn muted(&self) -> Style {
        Style::default().fg(self.c(self.colors.muted))
    }
    pub fn border(&self, focused: bool) -> Style {
        Style::default().fg(self.c(if focused {
            self.colors.border_focused
        } else {
            self.colors.border
        }))
    }
    pub fn title(&self, focused: bool) -> Style {
        if focused {
            Style::default()
                .fg(self.c(self.colors.title_focused))
                .add_modifier(Modifier::BOLD)
        } else {
            Style::default().fg(self.c(self.colors.title))
        }
    }
    pub fn accent(&self) -> Style {
        Style::default().fg(self.c(self.colors.accent))
    }
    pub fn selection(&self) -> Style {
        Style::default()
            .fg(self.c(self.colors.selection_fg))
            .bg(self.c(self.colors.selection_bg))
    }
    pub fn ok(&self) -> Style {
        Style::default().fg(self.c(self.colors.ok))
    }
    pub fn warn(&self) -> Style {
        Style::default().fg(self.c(self.colors.warn))
    }
    pub fn error(&self) -> Style {
        Style::default()
            .fg(self.c(self.colors.error))
            .add_modifier(Modifier::BOLD)
    }
    pub fn loss_train(&self) -> Color {
        self.c(self.colors.loss_train)
    }
    pub fn loss_smooth(&self) -> Color {
        self.c(self.colors.loss_smooth)
    }
    pub fn eval_train(&self) -> Color {
        self.c(self.colors.eval_train)
    }
    pub fn eval_val(&self) -> Color {
        self.c(self.colors.eval_val)
    }
    pub fn lr(&self) -> Color {
        self.c(self.colors.lr)
    }
    pub fn gauge(&self) -> Color {
        self.c(self.colors.gauge)
    }
    pub fn prompt(&self) -> Style {
        Style::default()
            .fg(self.c(self.colors.prompt))
            .add_modifier(Modifier::BOLD)
    }
    pub fn generated(&self) -> Style {
        Style::default().fg(self.c(self.colors.generated))
    }
    /// Alternating styles for tokenizer pieces.
    pub fn token(&self, index: usize) -> Style {
        let k = &self.colors;
        let (fg, bg) = if index.is_multiple_of(2) {
            (k.token_a, k.token_a_bg)
        } else {
            (k.token_b, k.token_b_bg)
        };
        Style::default().fg(self.c(fg)).bg(self.c(bg))
    }

    /// The heatmap colour of an attention weight in [0, 1].
    pub fn heat(&self, weight: f32) -> Color {
        let w = if weight.is_finite() {
            weight.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let stops = &self.colors.heat;
        let n = stops.len();
        if n == 0 {
            return Color::Reset;
        }
        let all_rgb = stops.iter().all(|c| matches!(c.0, Color::Rgb(..)));
        if !all_rgb || self.depth == ColorDepth::Ansi16 {
            // Pick a stop; named stops cannot be blended.
            let idx = ((w * (n - 1) as f32).round() as usize).min(n - 1);
            return self.c(stops[idx]);
        }
        let pos = w * (n - 1) as f32;
        let i = (pos.floor() as usize).min(n - 2);
        let t = pos - i as f32;
        let (Color::Rgb(r0, g0, b0), Color::Rgb(r1, g1, b1)) = (stops[i].0, stops[i + 1].0) else {
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
    /// The heat colour of a terminal cell: the weight rounded to one of
    /// [`HEAT_LEVELS`] steps first, so that a probe that moved a weight by a
    /// hair leaves its cell as it was (nothing is rewritten on the terminal)
    /// and only real changes repaint.
    pub fn heat_cell(&self, weight: f32) -> Color {
        let w = if weight.is_finite() {
            weight.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.heat((w * HEAT_LEVELS as f32).round() / HEAT_LEVELS as f32)
    }

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

/// Steps of the terminal heatmaps' colour scale ([`Theme::heat_cell`]).
pub const HEAT_LEVELS: u32 = 20;

/// Parses "#rrggbb", a named colour, an index, or "reset".
pub fn parse_color(s: &str) -> Option<Color> {
    Color::from_str(s.trim()).ok()
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
    fn errors_name_the_key() {
        let dark = BUILTIN_THEMES[0].1;
        let e = Theme::from_toml(
            &dark.replace("muted =", "mutde ="),
            "t",
            ColorDepth::TrueColor,
        )
        .expect_err("unknown key");
        let msg = e.to_string();
        assert!(msg.contains("mutde") && !msg.contains('\n'), "{msg}");
        let e = Theme::from_toml(
            &dark.replace("accent = \"#ebcb8b\"", "accent = 7"),
            "t",
            ColorDepth::TrueColor,
        )
        .expect_err("not a string");
        assert!(e.to_string().contains("accent = 7"), "{e}");
        let e = Theme::from_toml(
            &dark.replace("lr = ", "# lr = "),
            "t",
            ColorDepth::TrueColor,
        )
        .expect_err("missing");
        assert!(e.to_string().contains("`lr`"), "{e}");
        let one_stop = "heat = [\"#000000\"]";
        let heat_line = dark.lines().find(|l| l.starts_with("heat")).expect("heat");
        let e = Theme::from_toml(
            &dark.replace(heat_line, one_stop),
            "t",
            ColorDepth::TrueColor,
        )
        .expect_err("one stop");
        assert!(e.to_string().contains("at least two"), "{e}");
    }

    #[test]
    fn colours_are_mapped_to_the_depth() {
        let t = Theme::builtin("dark", ColorDepth::Ansi256).expect("dark");
        assert!(matches!(t.loss_train(), Color::Indexed(_)));
        let t = Theme::builtin("dark", ColorDepth::TrueColor).expect("dark");
        assert_eq!(t.loss_train(), Color::Rgb(0x5e, 0x81, 0xac));
        let f = Theme {
            name: "f".into(),
            depth: ColorDepth::Ansi16,
            colors: Colors::default(),
        };
        assert_eq!(f.heat(1.0), Color::White);
    }
}
