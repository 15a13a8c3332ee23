//! The attention heatmaps: the window view (half blocks, or shade characters
//! at 16 colours), the fit view (max-pooled, legend), the all-heads tiles and
//! the heads table, in true colour, 256 and 16 colours, at 80x24 and 200x60.

mod tui_support;

use headsup::app::heads::ScoreColumn;
use headsup::app::Action;
use headsup::train::*;
use headsup::ui::heatmap::{FitGeometry, FitHeatmap, Heatmap, Matrix, HALF};
use headsup::ui::{ColorDepth, Theme};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Color;
use ratatui::widgets::Widget;
use tui_support::*;

fn tokens(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("t{i}")).collect()
}

fn render_heat(
    theme: &Theme,
    map: &AttentionMap,
    cursor: usize,
    w: u16,
    h: u16,
) -> (Buffer, headsup::ui::heatmap::HeatmapGeometry) {
    let area = Rect::new(0, 0, w, h);
    let mut buf = Buffer::empty(area);
    let hm = Heatmap {
        matrix: Matrix {
            tokens: &map.tokens,
            weights: &map.probs[0][0],
            causal: map.causal,
        },
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
    let map = attention(&["a", "b", "c", "d"], 1, 1);
    let (buf, g) = render_heat(&theme, &map, 0, 20, 10);
    assert!(g.cell_width >= 2, "{g:?}");
    assert_eq!(g.rows_per_line, 1);
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
fn half_blocks_carry_two_query_rows_per_line() {
    let theme = Theme::builtin("dark", ColorDepth::TrueColor).expect("theme");
    let map = attention(&["a", "b", "c", "d"], 1, 1);
    let (buf, g) = render_heat(&theme, &map, 0, 20, 10);
    assert_eq!(g.rows_per_line, 2);
    assert_eq!((g.rows, g.grid.height), (4, 2));
    let cell = |line: u16, k: u16| &buf[(g.grid.x + k * g.cell_width, g.grid.y + line)];
    // Line 0: query 0 above (1 on key 0), query 1 below (0.25 on key 0).
    assert_eq!(cell(0, 0).symbol(), HALF);
    assert_eq!(cell(0, 0).fg, Color::Rgb(0xfc, 0xfd, 0xbf), "weight 1");
    assert_eq!(cell(0, 0).bg, theme.heat(0.25));
    assert_eq!(cell(0, 1).fg, Color::Rgb(0x0b, 0x0d, 0x21), "weight 0");
    assert_eq!(cell(0, 1).bg, theme.heat(0.75));
    // Line 1: queries 2 and 3.
    assert_eq!(cell(1, 3).fg, theme.heat(0.0));
    assert_eq!(cell(1, 3).bg, theme.heat(0.75));
    assert_eq!(cell(1, 2).fg, theme.heat(0.75));
    // 256 colours: the same, indexed.
    let theme = Theme::builtin("dark", ColorDepth::Ansi256).expect("theme");
    let (buf, g) = render_heat(&theme, &map, 0, 20, 10);
    for line in 0..2u16 {
        for k in 0..4u16 {
            let c = &buf[(g.grid.x + k * g.cell_width, g.grid.y + line)];
            assert_eq!(c.symbol(), HALF);
            assert!(matches!(c.fg, Color::Indexed(_)) && matches!(c.bg, Color::Indexed(_)));
        }
    }
}

#[test]
fn narrow_panes_window_around_the_cursor() {
    let theme = Theme::builtin("dark", ColorDepth::TrueColor).expect("theme");
    let toks = tokens(40);
    let refs: Vec<&str> = toks.iter().map(|s| s.as_str()).collect();
    let map = attention(&refs, 1, 1);
    let (_, g) = render_heat(&theme, &map, 31, 20, 8);
    assert!(g.row0 <= 31 && 31 < g.row0 + g.rows, "{g:?}");
    assert!(g.col0 <= 31 && 31 < g.col0 + g.cols, "{g:?}");
    assert_eq!(g.row0 % 2, 0, "half blocks pair even and odd rows");
}

/// An `n x n` map whose only head attends from q to q - `offset` (q < offset: itself).
fn stripe(n: usize, offset: usize) -> AttentionMap {
    let mut m = vec![0.0f32; n * n];
    for q in 0..n {
        let k = if q >= offset { q - offset } else { q };
        m[q * n + k] = 1.0;
    }
    AttentionMap {
        step: 7,
        tokens: tokens(n),
        n_layer: 1,
        n_head: 1,
        probs: vec![vec![m]],
        causal: true,
    }
}

#[test]
fn fit_view_max_pools_so_a_sharp_stripe_survives() {
    // 64 tokens in 20 lines x 30 columns: 40 pixel rows, 29 columns after the
    // gutter: 29 pixels square, blocks of 2 or 3 cells, max-pooled.
    let n = 64;
    let map = stripe(n, 9);
    let theme = Theme::builtin("dark", ColorDepth::TrueColor).expect("theme");
    let area = Rect::new(0, 0, 30, 21);
    let mut buf = Buffer::empty(area);
    let fit = FitHeatmap {
        matrix: Matrix {
            tokens: &map.tokens,
            weights: &map.probs[0][0],
            causal: map.causal,
        },
        cursor: 10,
        theme: &theme,
    };
    let g = fit.geometry(area);
    assert_eq!((g.block, g.zoom, g.pixels), (3, 1, 29), "{g:?}");
    // The blocks cover every row once.
    let covered: Vec<usize> = (0..g.pixels).flat_map(|p| g.cells(p, n)).collect();
    assert_eq!(covered, (0..n).collect::<Vec<_>>());
    for q in 0..n {
        assert!(g.cells(g.pixel_of(q), n).contains(&q), "row {q}");
    }
    fit.render(area, &mut buf);
    let hot = theme.heat(1.0);
    // Every pixel row of queries >= 9 is hot exactly where its queries'
    // keys (q - 9) are; an average over the block would have dimmed them.
    for py in 0..g.pixels {
        let qs = g.cells(py, n);
        if qs.start < 9 {
            continue;
        }
        let line = (py / 2) as u16;
        let c = |px: usize| {
            let cell = &buf[(g.grid.x + px as u16, g.grid.y + line)];
            if py % 2 == 0 {
                cell.fg
            } else {
                cell.bg
            }
        };
        let hits: Vec<usize> = (0..g.pixels).filter(|&px| c(px) == hot).collect();
        let want: Vec<usize> = qs
            .map(|q| g.pixel_of(q - 9))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(hits, want, "pixel row {py}");
    }
    // The cursor row is marked in the gutter; the legend names the pooling.
    let line = (g.pixel_of(10) / 2) as u16;
    assert_eq!(buf[(0, g.grid.y + line)].symbol(), "▸", "query 10");
    let legend: String = (0..30).map(|x| buf[(x, 20)].symbol()).collect();
    assert!(
        legend.starts_with('0') && legend.contains("1 64×64→29 max"),
        "{legend}"
    );
    // Small matrices are zoomed instead: 4 tokens in 20 columns, 40 rows -> 4x.
    let g = FitGeometry::new(4, Rect::new(0, 0, 20, 20));
    assert_eq!((g.block, g.zoom, g.pixels), (1, 5, 20));
    assert_eq!(g.cells(7, 4), 1..2);
}

#[test]
fn overview_tiles_fit_every_head_and_open_one() {
    let mut app = busy_app();
    app.update(Action::FocusAttention);
    app.update(Action::Down);
    app.update(Action::Down);
    assert_eq!(app.attention.cursor, 2);
    // The window view shows the side list of top keys.
    app.update(Action::Fit);
    let s = text(&render(&app, 200, 60));
    assert!(s.contains("query 2:  sat"), "{s}");
    assert!(s.contains("· window"), "{s}");
    app.update(Action::Fit);
    app.update(Action::HeadNext);
    app.update(Action::LayerNext);
    assert_eq!((app.attention.layer, app.attention.head), (1, 1));
    app.update(Action::LayerNext);
    assert_eq!(app.attention.layer, 0, "wraps around");
    app.update(Action::Overview);
    let buf = render(&app, 200, 60);
    let s = text(&buf);
    for h in ["h1", "▸h2", "h3", "h4"] {
        assert!(s.contains(h), "{s}");
    }
    assert!(s.contains("head all/4"));
    // Each tile holds the whole 6x6 matrix: half blocks, the diagonal hot.
    let halves = s.matches(HALF).count();
    assert!(halves >= 4 * 9, "{halves} half blocks\n{s}");
    // The cursor moves between tiles; Enter opens the one under it.
    app.update(Action::HeadNext);
    app.update(Action::Down);
    assert_eq!(app.attention.head, 3);
    app.update(Action::Input);
    assert!(!app.attention.overview);
    let s = text(&render(&app, 200, 60));
    assert!(s.contains("layer 1/2 head 4/4"), "{s}");
    // Past the last head: the layer's mean, max and rollout.
    app.update(Action::HeadNext);
    assert!(text(&render(&app, 200, 60)).contains("mean of 4 heads"));
    app.update(Action::HeadNext);
    assert!(text(&render(&app, 200, 60)).contains("max of 4 heads"));
    app.update(Action::HeadNext);
    assert!(text(&render(&app, 200, 60)).contains("rollout"));
    app.update(Action::HeadNext);
    assert_eq!(app.attention.head, 0);
}

/// Two heads over "a b c a b c": head 1 attends to the previous token,
/// head 2 is an induction head (q -> q - 2 in the second half).
fn two_heads() -> AttentionMap {
    let n = 6;
    let mut prev = vec![0.0f32; n * n];
    let mut ind = vec![0.0f32; n * n];
    for q in 0..n {
        prev[q * n + q.saturating_sub(1)] = 1.0;
        ind[q * n + if q >= 3 { q - 2 } else { q }] = 1.0;
    }
    AttentionMap {
        step: 9,
        tokens: ["a", "b", "c", "a", "b", "c"].map(String::from).to_vec(),
        n_layer: 1,
        n_head: 2,
        probs: vec![vec![prev, ind]],
        causal: true,
    }
}

#[test]
fn heads_table_sorts_and_enter_jumps() {
    let mut app = busy_app();
    app.update_event(Event::Attention(two_heads()));
    app.update(Action::FocusAttention);
    app.update(Action::HeadsTable);
    assert_eq!(app.attention.sort, ScoreColumn::Induction);
    let s = text(&render(&app, 200, 60));
    assert!(s.contains("heads by copy"), "{s}");
    // Sorted by copy score: the induction head (1.2) first, at 1.00.
    let rows: Vec<&str> = s.lines().filter(|l| l.contains("  1.")).collect();
    assert!(
        rows[0].contains("1.2") && rows[0].contains("1.00"),
        "{rows:?}"
    );
    // The trainer's induction probe scores arrive for the same step: the
    // `induct` column shows them, and they sort.
    assert!(s.contains("induct"), "{s}");
    app.update_event(Event::Induction(InductionScores {
        step: 9,
        half: 32,
        n_layer: 1,
        n_head: 2,
        scores: vec![0.12, 0.97],
    }));
    app.update(Action::SortNext);
    assert_eq!(app.attention.sort, ScoreColumn::InductionProbe);
    let s = text(&render(&app, 200, 60));
    assert!(s.contains("heads by induct"), "{s}");
    let rows: Vec<&str> = s.lines().filter(|l| l.contains("  1.")).collect();
    assert!(
        rows[0].contains("1.2") && rows[0].contains("0.97"),
        "{rows:?}"
    );
    assert!(
        rows[1].contains("1.1") && rows[1].contains("0.12"),
        "{rows:?}"
    );
    // Scores of another step do not land on this probe.
    app.update_event(Event::Induction(InductionScores {
        step: 8,
        half: 32,
        n_layer: 1,
        n_head: 2,
        scores: vec![0.5, 0.5],
    }));
    assert_eq!(app.attention.scores[1].induction_probe, 0.97);
    // Sort by previous token: head 1.1 first.
    app.update(Action::SortNext);
    app.update(Action::SortNext);
    app.update(Action::SortNext);
    assert_eq!(app.attention.sort, ScoreColumn::PrevToken);
    let order = app.attention.table_order();
    assert_eq!(app.attention.scores[order[0]].head, 0);
    // Enter on the second row opens head 2's heatmap.
    app.update(Action::Down);
    app.update(Action::Input);
    assert!(!app.attention.table);
    assert_eq!((app.attention.layer, app.attention.head), (0, 1));
    // At 80x24 the table fits too.
    app.update(Action::HeadsTable);
    let s = text(&render(&app, 80, 24));
    assert!(s.contains("copy"), "{s}");
}

#[test]
fn every_view_renders_at_every_depth_and_size() {
    for depth in [
        ColorDepth::TrueColor,
        ColorDepth::Ansi256,
        ColorDepth::Ansi16,
    ] {
        for name in ["dark", "light", "ansi16"] {
            let theme = Theme::builtin(name, depth).expect("theme");
            for (w, h) in [(80, 24), (200, 60)] {
                for action in [
                    None,
                    Some(Action::Fit),
                    Some(Action::Overview),
                    Some(Action::HeadsTable),
                ] {
                    let mut a2 = busy_app();
                    a2.update_event(Event::Attention(stripe(64, 9)));
                    a2.update(Action::FocusAttention);
                    if let Some(act) = action {
                        a2.update(act);
                    }
                    let buf = render_with(&a2, &theme, w, h);
                    let s = text(&buf);
                    assert!(
                        s.contains("attention"),
                        "{name} {depth:?} {w}x{h} {action:?}"
                    );
                    if depth == ColorDepth::Ansi16 || theme.depth == ColorDepth::Ansi16 {
                        for y in 0..h {
                            for x in 0..w {
                                assert!(!matches!(
                                    buf[(x, y)].fg,
                                    Color::Rgb(..) | Color::Indexed(_)
                                ));
                                assert!(!matches!(
                                    buf[(x, y)].bg,
                                    Color::Rgb(..) | Color::Indexed(_)
                                ));
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A one-head map over "a b c a b c" that is `w` induction head and `1 - w`
/// attention to itself.
fn forming(step: usize, w: f32) -> AttentionMap {
    let n = 6;
    let mut m = vec![0.0f32; n * n];
    for q in 0..n {
        m[q * n + q] += 1.0 - w;
        m[q * n + if q >= 3 { q - 2 } else { q }] += w;
    }
    AttentionMap {
        step,
        tokens: ["a", "b", "c", "a", "b", "c"].map(String::from).to_vec(),
        n_layer: 1,
        n_head: 1,
        probs: vec![vec![m]],
        causal: true,
    }
}

#[test]
fn scrub_back_through_kept_probes_and_see_a_head_form() {
    let mut app = busy_app();
    app.update(Action::FocusAttention);
    for (i, w) in [0.0f32, 0.25, 0.5, 0.75, 1.0].into_iter().enumerate() {
        app.update_event(Event::Attention(forming(100 * (i + 1), w)));
    }
    // busy_app's probe plus five.
    assert_eq!(app.attention.history.len(), 6);
    app.update(Action::Older);
    app.update(Action::Older);
    let s = text(&render(&app, 200, 60));
    assert!(s.contains("step 300") && s.contains("probe 4/6"), "{s}");
    assert_eq!(app.attention.map.as_ref().map(|m| m.step), Some(300));
    // Dequantised within half a byte step: 0.5 on the induction key.
    assert!((app.attention.weight(3, 1) - 0.5).abs() <= 0.51 / 255.0);
    // A new probe while scrubbing is kept but does not move the view.
    app.update_event(Event::Attention(forming(600, 1.0)));
    assert_eq!(app.attention.map.as_ref().map(|m| m.step), Some(300));
    assert_eq!(app.attention.viewing, Some(3));
    // The table's sparkline shows the copy score rising over the probes.
    app.update(Action::HeadsTable);
    let s = text(&render(&app, 200, 60));
    let row = s.lines().find(|l| l.contains("  1.1 ")).expect("head row");
    assert!(row.contains(" ▁▃▅▆██"), "{row}");
    app.update(Action::HeadsTable);
    // Back to the newest: live again.
    for _ in 0..5 {
        app.update(Action::Newer);
    }
    assert_eq!(app.attention.viewing, None);
    assert_eq!(app.attention.map.as_ref().map(|m| m.step), Some(600));
    let s = text(&render(&app, 200, 60));
    assert!(s.contains("step 600") && !s.contains("probe "), "{s}");
}

/// In every pixel row of `g` whose queries are all at or past `offset`, the
/// pixels in the hot colour are exactly those holding a key `q - offset`.
fn assert_stripe(buf: &Buffer, g: &FitGeometry, n: usize, offset: usize, hot: Color, what: &str) {
    let mut rows = 0;
    for py in 0..g.pixels {
        let qs = g.cells(py, n);
        if qs.start < offset {
            continue;
        }
        let line = (py / 2) as u16;
        let c = |px: usize| {
            let cell = &buf[(g.grid.x + px as u16, g.grid.y + line)];
            if py % 2 == 0 {
                cell.fg
            } else {
                cell.bg
            }
        };
        let keys: Vec<usize> = qs.map(|q| q - offset).collect();
        let hits: Vec<usize> = (0..g.pixels).filter(|&px| c(px) == hot).collect();
        let want: Vec<usize> = (0..g.pixels)
            .filter(|&px| g.cells(px, n).any(|k| keys.contains(&k)))
            .collect();
        assert_eq!(hits, want, "{what}: pixel row {py}");
        rows += 1;
    }
    assert!(rows >= 4, "{what}: only {rows} rows checked");
}

/// The colour kind a depth allows: RGB in true colour, indexed in 256
/// colours, named in 16.
fn of_depth(c: Color, depth: ColorDepth) -> bool {
    match depth {
        ColorDepth::TrueColor => matches!(c, Color::Rgb(..)),
        ColorDepth::Ansi256 => matches!(c, Color::Indexed(_)),
        ColorDepth::Ansi16 => !matches!(c, Color::Rgb(..) | Color::Indexed(_)),
    }
}

#[test]
fn fit_tiles_and_table_colours_at_every_depth_and_size() {
    let n = 128;
    let offsets = [9usize, 17, 1, 30];
    let heads: Vec<Vec<f32>> = offsets
        .iter()
        .map(|&o| stripe(n, o).probs[0][0].clone())
        .collect();
    let toks = tokens(n);
    for depth in [
        ColorDepth::TrueColor,
        ColorDepth::Ansi256,
        ColorDepth::Ansi16,
    ] {
        let theme = Theme::builtin("dark", depth).expect("theme");
        let hot = theme.heat(1.0);
        let cold = theme.heat(0.0);
        assert!(of_depth(hot, depth) && of_depth(cold, depth), "{depth:?}");
        assert_ne!(hot, cold);
        for (w, h) in [(80u16, 24u16), (200, 60)] {
            let what = format!("{depth:?} {w}x{h}");
            let area = Rect::new(0, 0, w, h);
            // Fit view: max-pooled half blocks, the stripe hot in every row.
            let mut buf = Buffer::empty(area);
            let fit = FitHeatmap {
                matrix: Matrix {
                    tokens: &toks,
                    weights: &heads[0],
                    causal: true,
                },
                cursor: 40,
                theme: &theme,
            };
            let g = fit.geometry(area);
            assert!(g.block >= 2 && g.zoom == 1, "{what}: {g:?}");
            fit.render(area, &mut buf);
            assert_stripe(&buf, &g, n, 9, hot, &format!("fit {what}"));
            assert_eq!(buf[(g.grid.x, g.grid.y)].symbol(), HALF);
            // Above the diagonal: cold.
            assert_eq!(buf[(g.grid.right() - 1, g.grid.y)].fg, cold, "{what}");
            // Tiles: every head's whole matrix, each its own stripe.
            let mut buf = Buffer::empty(area);
            headsup::ui::heatmap::HeadTiles {
                tokens: &toks,
                heads: &heads,
                selected_head: 1,
                theme: &theme,
            }
            .render(area, &mut buf);
            let tiles = headsup::ui::heatmap::tile_areas(heads.len(), area);
            assert_eq!(tiles.len(), 4);
            for (i, ((title, body), &o)) in tiles.iter().zip(&offsets).enumerate() {
                let g = FitGeometry::new(n, *body);
                assert_stripe(&buf, &g, n, o, hot, &format!("tile {} {what}", i + 1));
                let label: String = (title.x..title.x + 3)
                    .map(|x| buf[(x, title.y)].symbol())
                    .collect();
                if i == 1 {
                    assert_eq!(label, "▸h2", "{what}");
                    assert_eq!(
                        buf[(title.x, title.y)].bg,
                        theme.selection().bg.unwrap_or(Color::Reset)
                    );
                } else {
                    assert_eq!(label, format!(" h{}", i + 1), "{what}");
                }
            }
            // Heads table: rows sorted by copy score, the first selected.
            let mut app = busy_app();
            app.update_event(Event::Attention(two_heads()));
            app.update(Action::FocusAttention);
            app.update(Action::Zoom);
            app.update(Action::HeadsTable);
            let buf = render_with(&app, &theme, w, h);
            let s = text(&buf);
            let (y, line) = s
                .lines()
                .enumerate()
                .find(|(_, l)| l.contains("  1.2  "))
                .unwrap_or_else(|| panic!("{what}\n{s}"));
            assert!(line.contains("1.00"), "{what}: {line}");
            let x = line[..line.find("1.2").unwrap()].chars().count() as u16;
            let cell = &buf[(x, y as u16)];
            assert_eq!(Some(cell.bg), theme.selection().bg, "{what}");
            let next = s.lines().nth(y + 1).unwrap();
            assert!(next.contains("1.1"), "{what}: {next}");
            let x = next[..next.find("1.1").unwrap()].chars().count() as u16;
            assert_ne!(
                Some(buf[(x, y as u16 + 1)].bg),
                theme.selection().bg,
                "{what}"
            );
            assert!(s.contains("induct"), "{what}");
        }
    }
}
