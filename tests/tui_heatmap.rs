//! Heatmap colours and symbols for a known map at 16 colours and true colour.

mod tui_support;

use headsup::ui::heatmap::Heatmap;
use headsup::ui::{ColorDepth, Theme};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Color;
use ratatui::widgets::Widget;
use tui_support::*;

fn render_heat(
    theme: &Theme,
    cursor: usize,
    w: u16,
    h: u16,
) -> (Buffer, headsup::ui::heatmap::HeatmapGeometry) {
    let map = attention(&["a", "b", "c", "d"], 1, 1);
    let area = Rect::new(0, 0, w, h);
    let mut buf = Buffer::empty(area);
    let hm = Heatmap {
        map: &map,
        layer: 0,
        head: 0,
        cursor,
        theme,
    };
    let g = hm.geometry(area);
    hm.render(area, &mut buf);
    (buf, g)
}

#[test]
fn sixteen_colours_use_shade_characters() {
    let theme = Theme::builtin("ansi16", ColorDepth::TrueColor).expect("theme");
    assert_eq!(theme.depth, ColorDepth::Ansi16, "ansi16 caps the depth");
    let (buf, g) = render_heat(&theme, 0, 20, 10);
    assert!(g.cell_width >= 2, "{g:?}");
    assert_eq!((g.row0, g.col0, g.rows, g.cols), (0, 0, 4, 4));
    let cell = |q: u16, k: u16| &buf[(g.grid.x + k * g.cell_width, g.grid.y + q)];
    // q=0,k=0 has weight 1: full block in the last heat stop (white).
    assert_eq!(cell(0, 0).symbol(), "█");
    assert_eq!(cell(0, 0).fg, Color::White);
    // Above the diagonal: weight 0, blank in the first stop (black).
    assert_eq!(cell(0, 3).symbol(), " ");
    assert_eq!(cell(0, 3).fg, Color::Black);
    // q=3: 0.75 on itself -> '▓'; 0.25/3 on earlier keys -> ' '.
    assert_eq!(cell(3, 3).symbol(), "▓");
    assert_eq!(cell(3, 0).symbol(), " ");
    // q=1: 0.25 on key 0 -> '░' in blue.
    assert_eq!(cell(1, 0).symbol(), "░");
    assert_eq!(cell(1, 0).fg, Color::Blue);
    // Every colour is one of the 16 named ones.
    for y in 0..10 {
        for x in 0..20 {
            assert!(!matches!(
                buf[(x, y)].fg,
                Color::Rgb(..) | Color::Indexed(_)
            ));
        }
    }
    // Row labels on the left, key labels below.
    assert_eq!(buf[(0, g.grid.y + 2)].symbol(), "c");
    assert_eq!(
        buf[(g.grid.x + g.cell_width, g.grid.bottom())].symbol(),
        "b"
    );
}

#[test]
fn true_colour_uses_the_gradient() {
    let theme = Theme::builtin("dark", ColorDepth::TrueColor).expect("theme");
    let (buf, g) = render_heat(&theme, 0, 20, 10);
    let cell = |q: u16, k: u16| &buf[(g.grid.x + k * g.cell_width, g.grid.y + q)];
    assert_eq!(cell(0, 0).symbol(), "█");
    assert_eq!(
        cell(0, 0).fg,
        Color::Rgb(0xfc, 0xfd, 0xbf),
        "weight 1 = last stop"
    );
    assert_eq!(
        cell(0, 1).fg,
        Color::Rgb(0x0b, 0x0d, 0x21),
        "weight 0 = first stop"
    );
    assert_eq!(cell(3, 3).fg, theme.heat(0.75));
    assert!(matches!(cell(2, 0).fg, Color::Rgb(..)));
}

#[test]
fn ansi256_maps_to_indexed_colours() {
    let theme = Theme::builtin("dark", ColorDepth::Ansi256).expect("theme");
    let (buf, g) = render_heat(&theme, 0, 20, 10);
    for q in 0..4u16 {
        for k in 0..4u16 {
            assert!(matches!(
                buf[(g.grid.x + k * g.cell_width, g.grid.y + q)].fg,
                Color::Indexed(_)
            ));
        }
    }
}

#[test]
fn narrow_panes_window_around_the_cursor() {
    let theme = Theme::builtin("dark", ColorDepth::TrueColor).expect("theme");
    let tokens: Vec<String> = (0..40).map(|i| format!("t{i}")).collect();
    let refs: Vec<&str> = tokens.iter().map(|s| s.as_str()).collect();
    let map = attention(&refs, 1, 1);
    let area = Rect::new(0, 0, 20, 8);
    let hm = Heatmap {
        map: &map,
        layer: 0,
        head: 0,
        cursor: 30,
        theme: &theme,
    };
    let g = hm.geometry(area);
    assert!(g.row0 <= 30 && 30 < g.row0 + g.rows, "{g:?}");
    assert!(g.col0 <= 30 && 30 < g.col0 + g.cols, "{g:?}");
    let mut buf = Buffer::empty(area);
    hm.render(area, &mut buf);
}

#[test]
fn overview_and_top_keys() {
    let mut app = busy_app();
    app.update(headsup::app::Action::FocusAttention);
    app.update(headsup::app::Action::Down);
    app.update(headsup::app::Action::Down);
    assert_eq!(app.attention.cursor, 2);
    let s = text(&render(&app, 200, 60));
    assert!(s.contains("query 2:  sat"), "{s}");
    app.update(headsup::app::Action::HeadNext);
    app.update(headsup::app::Action::LayerNext);
    assert_eq!((app.attention.layer, app.attention.head), (1, 1));
    app.update(headsup::app::Action::LayerNext);
    assert_eq!(app.attention.layer, 0, "wraps around");
    app.update(headsup::app::Action::Overview);
    let s = text(&render(&app, 200, 60));
    for h in ["h0", "h1", "h2", "h3"] {
        assert!(s.contains(h), "{s}");
    }
    assert!(s.contains("head all/4"));
}
