//! Theme loading: built-ins, user themes, bad TOML, colour depth.

use headsup::ui::theme::{map_color, BUILTIN_THEMES};
use headsup::ui::{ColorDepth, Theme, ThemeError};
use ratatui::style::Color;

#[test]
fn all_builtins_load() {
    for (name, _) in BUILTIN_THEMES {
        let t = Theme::load(name, None, ColorDepth::TrueColor).expect("builtin loads");
        assert_eq!(t.name, *name);
    }
}

#[test]
fn unknown_theme_lists_the_available_ones() {
    let e = Theme::load("neon", None, ColorDepth::TrueColor).expect_err("unknown");
    let msg = e.to_string();
    assert!(
        msg.contains("neon") && msg.contains("ansi16, dark, light"),
        "{msg}"
    );
    assert!(!msg.contains('\n'));
}

#[test]
fn user_theme_from_dir_and_bad_toml() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = BUILTIN_THEMES[0]
        .1
        .replace("name = \"dark\"", "name = \"mine\"");
    std::fs::write(dir.path().join("mine.toml"), good).expect("write");
    std::fs::write(
        dir.path().join("broken.toml"),
        "name = \"broken\"\n[colors]\nfg = 12 3",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("badcolour.toml"),
        BUILTIN_THEMES[0]
            .1
            .replace("fg = \"#d8dee9\"", "fg = \"mauve-ish\""),
    )
    .expect("write");
    let t = Theme::load("mine", Some(dir.path()), ColorDepth::TrueColor).expect("user theme");
    assert_eq!(t.name, "mine");
    let e = Theme::load("broken", Some(dir.path()), ColorDepth::TrueColor).expect_err("bad toml");
    assert!(matches!(e, ThemeError::Invalid { .. }), "{e}");
    let e =
        Theme::load("badcolour", Some(dir.path()), ColorDepth::TrueColor).expect_err("bad colour");
    assert!(e.to_string().contains("mauve-ish"), "{e}");
    let e = Theme::load("nope", Some(dir.path()), ColorDepth::TrueColor).expect_err("unknown");
    assert!(e.to_string().contains("mine"), "user themes listed: {e}");
    assert!(Theme::from_toml("[colors]\nfg = \"red\"", "x", ColorDepth::TrueColor).is_err());
    assert!(Theme::from_toml("bogus = 1", "x", ColorDepth::TrueColor).is_err());
}

#[test]
fn colour_depth_detection_and_mapping() {
    assert_eq!(
        ColorDepth::from_env(Some("truecolor"), Some("xterm")),
        ColorDepth::TrueColor
    );
    assert_eq!(
        ColorDepth::from_env(Some("24bit"), None),
        ColorDepth::TrueColor
    );
    assert_eq!(
        ColorDepth::from_env(None, Some("xterm-256color")),
        ColorDepth::Ansi256
    );
    assert_eq!(
        ColorDepth::from_env(None, Some("xterm")),
        ColorDepth::Ansi16
    );
    assert_eq!(ColorDepth::from_env(None, None), ColorDepth::Ansi16);
    assert!(matches!(
        map_color(Color::Rgb(10, 200, 30), ColorDepth::Ansi256),
        Color::Indexed(_)
    ));
    assert_eq!(
        map_color(Color::Rgb(250, 250, 250), ColorDepth::Ansi16),
        Color::White
    );
    let t = Theme::builtin("dark", ColorDepth::Ansi16).expect("theme");
    assert!(!matches!(t.heat(0.5), Color::Rgb(..) | Color::Indexed(_)));
    assert_eq!(t.heat_symbol(1.0), "█");
    assert_eq!(t.heat_symbol(0.0), " ");
    assert_eq!(t.heat_symbol(0.5), "▒");
}
