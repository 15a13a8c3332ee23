//! The workbench on a masked-LM (BERT) run, drawn in TestBackend at 80x24
//! and 200x60, in true colour and in 16 colours: the attention pane and the
//! heads table on a bidirectional map (later keys count), the playground
//! filling `[MASK]`s with each mask's top-k, the loss pane's masked
//! accuracy, and the dataset pane's masked record with the predictions.

mod tui_support;

use crossterm::event::KeyCode;
use headsup::app::{App, Effect};
use headsup::data::{Dataset, Record};
use headsup::train::*;
use headsup::ui::{ColorDepth, Theme};
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};
use tui_support::*;

const SIZES: [(u16, u16); 2] = [(80, 24), (200, 60)];
const DEPTHS: [ColorDepth; 2] = [ColorDepth::TrueColor, ColorDepth::Ansi16];

fn themes() -> Vec<Theme> {
    DEPTHS
        .iter()
        .map(|&d| Theme::builtin("dark", d).expect("dark theme"))
        .collect()
}

/// `[CLS] 明 月 光 明 月 光 [SEP]`, one head that copies by looking ahead:
/// queries 1-3 put 0.9 on the token after the other occurrence of their
/// token (5, 6, 7: later keys), every other query on itself; 0.1 spread
/// over all keys. A causal reading sees none of it.
fn lookahead_map() -> AttentionMap {
    let tokens = ["[CLS]", "明", "月", "光", "明", "月", "光", "[SEP]"];
    let n = tokens.len();
    let mut m = vec![0.1 / n as f32; n * n];
    for q in 0..n {
        let k = if (1..=3).contains(&q) { q + 4 } else { q };
        m[q * n + k] += 0.9;
    }
    AttentionMap {
        step: 300,
        tokens: tokens.iter().map(|s| s.to_string()).collect(),
        n_layer: 1,
        n_head: 1,
        probs: vec![vec![m]],
        causal: false,
    }
}

fn dataset() -> Dataset {
    Dataset::from_records(
        "poems",
        vec![Record {
            title: "靜夜思".into(),
            text: "明月光，疑是地上霜。".into(),
        }],
    )
}

/// A masked LM's run, evaluated once, with the look-ahead map.
fn mlm_app() -> App {
    let mut a = app_with(dataset());
    a.update_event(Event::Started(RunInfo {
        masked_lm: true,
        ..run_info()
    }));
    for i in 1..=20 {
        a.update_event(step(i * 10, 8.0 - i as f32 * 0.1));
    }
    a.update_event(Event::Eval(EvalStats {
        step: 200,
        train_loss: 6.1,
        val_loss: 6.3,
        best_val_loss: 6.3,
        masked: Some(MaskedEval {
            loss: 6.3,
            top1: 0.248,
            top5: 0.303,
            positions: 2928,
        }),
    }));
    a.update_event(Event::Attention(lookahead_map()));
    a
}

/// The screen as text, the blank cell after a wide character left out.
fn screen(buf: &Buffer) -> String {
    let mut s = String::new();
    for y in 0..buf.area.height {
        let mut x = 0;
        while x < buf.area.width {
            let sym = buf[(x, y)].symbol();
            s.push_str(sym);
            x += unicode_width::UnicodeWidthStr::width(sym).max(1) as u16;
        }
        s.push('\n');
    }
    s
}

fn has(buf: &Buffer, s: &str) -> bool {
    screen(buf).contains(s)
}

/// The cell where `s` starts on screen (by symbols, wide characters take
/// one symbol and a blank).
fn find(buf: &Buffer, s: &str) -> Option<(u16, u16)> {
    let first = s.chars().next()?.to_string();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            if buf[(x, y)].symbol() != first {
                continue;
            }
            let mut xx = x;
            let mut ok = true;
            for c in s.chars() {
                if xx >= buf.area.width || buf[(xx, y)].symbol() != c.to_string() {
                    ok = false;
                    break;
                }
                xx += unicode_width::UnicodeWidthChar::width(c)
                    .unwrap_or(1)
                    .max(1) as u16;
            }
            if ok {
                return Some((x, y));
            }
        }
    }
    None
}

fn no_escape(buf: &Buffer) {
    let t = text(buf);
    assert!(
        !t.contains('\u{1b}') && !t.contains('\u{9b}'),
        "raw control characters on screen:\n{t}"
    );
}

fn colour_fits(c: Color, depth: ColorDepth) -> bool {
    !matches!(
        (depth, c),
        (ColorDepth::Ansi16, Color::Rgb(..) | Color::Indexed(_))
    )
}

#[test]
fn the_attention_pane_on_a_bidirectional_map_lists_later_keys() {
    for t in themes() {
        for (w, h) in SIZES {
            let mut a = mlm_app();
            a.handle_key(ch('3'));
            a.handle_key(key(KeyCode::Down)); // query 1: 明
            let buf = render_with(&a, &t, w, h);
            let what = format!("{:?} {w}x{h}", t.depth);
            if w >= 200 {
                assert!(has(&buf, "bidirectional"), "{what}: title\n{}", text(&buf));
            }
            // Query 1's heaviest key is 5 (月), after it: a causal top-keys
            // list (keys 0..=1) could not show it.
            if w >= 200 {
                assert!(has(&buf, "query 1: 明"), "{what}\n{}", text(&buf));
                assert!(
                    has(&buf, "  5 月"),
                    "{what}: later key listed\n{}",
                    text(&buf)
                );
                assert!(has(&buf, "0.91"), "{what}\n{}", text(&buf));
            } else {
                assert!(has(&buf, "→ 月 0.91"), "{what}\n{}", text(&buf));
            }
            // Every cell the pane drew fits the terminal's colours.
            for c in buf.content() {
                assert!(
                    colour_fits(c.fg, t.depth) && colour_fits(c.bg, t.depth),
                    "{what}"
                );
            }
        }
    }
}

#[test]
fn the_window_view_centres_the_columns_on_a_bidirectional_query() {
    // 80 keys, a window narrower than the map: on query 10 a causal window
    // ends at key 10; a bidirectional one shows keys past it too.
    let n = 80;
    let tokens: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();
    let weights = vec![1.0 / n as f32; n * n];
    let t = theme();
    let area = ratatui::layout::Rect::new(0, 0, 40, 20);
    let geo = |causal| {
        headsup::ui::heatmap::Heatmap {
            matrix: headsup::ui::heatmap::Matrix {
                tokens: &tokens,
                weights: &weights,
                causal,
            },
            cursor: 60,
            theme: &t,
        }
        .geometry(area)
    };
    let (c, b) = (geo(true), geo(false));
    assert!(c.cols < n, "the window is narrower than the map: {c:?}");
    assert_eq!(c.col0 + c.cols, 61, "causal: the columns end at the query");
    assert!(b.col0 + b.cols > 70 && b.col0 <= 60, "bidirectional: {b:?}");
}

#[test]
fn the_heads_table_scores_copies_from_later_tokens() {
    for t in themes() {
        for (w, h) in SIZES {
            let mut a = mlm_app();
            a.handle_key(ch('3'));
            a.handle_key(ch('t'));
            let buf = render_with(&a, &t, w, h);
            // copy: queries 1-3 of 6 with a target copy 0.9125, the others
            // put 0.0125 there: 0.46 (a causal reading: 0.01).
            let s = a.attention.scores[0];
            assert!((s.induction - 0.4625).abs() < 1e-4, "{s:?}");
            assert!(has(&buf, "0.46"), "{:?} {w}x{h}\n{}", t.depth, text(&buf));
        }
    }
}

fn fill_result(id: u64) -> FillResult {
    FillResult {
        id,
        step: 300,
        pieces: vec!["明".into(), "[MASK]".into(), "光".into()],
        masks: vec![MaskFill {
            at: 1,
            top: vec![
                Alt {
                    text: "月".into(),
                    prob: 0.612,
                },
                Alt {
                    text: "\u{1b}[2J".into(),
                    prob: 0.2,
                },
                Alt {
                    text: "日".into(),
                    prob: 0.05,
                },
            ],
        }],
        error: None,
    }
}

#[test]
fn the_playground_fills_each_mask_with_its_top_k() {
    for t in themes() {
        for (w, h) in SIZES {
            let mut a = mlm_app();
            a.handle_key(ch('4'));
            a.handle_key(ch('i'));
            type_str(&mut a, "明[MASK]光");
            let eff = a.handle_key(key(KeyCode::Enter));
            let Some(Effect::Send(Command::Fill(req))) = eff.first() else {
                panic!("a fill, not a generation: {eff:?}");
            };
            assert_eq!((req.text.as_str(), req.k), ("明[MASK]光", 5));
            let before = render_with(&a, &t, w, h);
            assert!(has(&before, "filling…"), "{}", text(&before));
            a.update_event(Event::Filled(fill_result(req.id)));
            let buf = render_with(&a, &t, w, h);
            let what = format!("{:?} {w}x{h}", t.depth);
            assert!(has(&buf, "fill [MASK]"), "{what}: title\n{}", text(&buf));
            assert!(has(&buf, "= 明月光"), "{what}\n{}", text(&buf));
            assert!(has(&buf, "[MASK] 1: 月 0.612"), "{what}\n{}", text(&buf));
            assert!(has(&buf, "日 0.050"), "{what}\n{}", text(&buf));
            no_escape(&buf);
            // The filled token: likely (>= 0.5), so the "ok" colour, underlined.
            let (x, y) = find(&buf, "= 明月光").expect("filled line");
            let cell = &buf[(x + 4, y)];
            assert_eq!(cell.symbol(), "月");
            assert_eq!(cell.fg, t.ok().fg.unwrap(), "{what}");
            assert!(cell.modifier.contains(Modifier::UNDERLINED), "{what}");
            assert!(colour_fits(cell.fg, t.depth));
            // p probes attention on the filled text.
            a.handle_key(key(KeyCode::Esc));
            let eff = a.handle_key(ch('p'));
            assert!(
                eff.iter().any(
                    |e| matches!(e, Effect::Send(Command::Probe { text: Some(t) }) if t == "明月光")
                ),
                "{eff:?}"
            );
        }
    }
}

#[test]
fn a_text_without_a_mask_gets_a_hint_not_a_request() {
    let mut a = mlm_app();
    a.handle_key(ch('4'));
    a.handle_key(ch('i'));
    type_str(&mut a, "明月光");
    let eff = a.handle_key(key(KeyCode::Enter));
    assert!(eff.is_empty(), "{eff:?}");
    let buf = render(&a, 200, 60);
    assert!(has(&buf, "no [MASK] in the text"), "{}", text(&buf));
    // An error from the trainer (a text too long) reads as one line too.
    type_str(&mut a, "[MASK]");
    let eff = a.handle_key(key(KeyCode::Enter));
    let Some(Effect::Send(Command::Fill(req))) = eff.first() else {
        panic!("{eff:?}")
    };
    a.update_event(Event::Filled(FillResult {
        id: req.id,
        step: 1,
        pieces: vec![],
        masks: vec![],
        error: Some("the text is 99 tokens with [CLS] and [SEP], more than the model's 64 positions; shorten it".into()),
    }));
    assert!(has(
        &render(&a, 200, 60),
        "more than the model's 64 positions"
    ));
}

#[test]
fn the_loss_pane_shows_masked_accuracy() {
    for t in themes() {
        for (w, h) in SIZES {
            let a = mlm_app();
            let buf = render_with(&a, &t, w, h);
            let what = format!("{:?} {w}x{h}", t.depth);
            assert!(
                has(&buf, "masked acc top-1 0.248"),
                "{what}\n{}",
                text(&buf)
            );
            assert!(has(&buf, "top-5 0.303"), "{what}\n{}", text(&buf));
        }
    }
    // A causal run has no such line.
    assert!(!has(&render(&busy_app(), 200, 60), "masked acc"));
}

fn masked_record(id: u64) -> RecordLoss {
    let pieces: Vec<String> = "明月光，疑是地上霜。".chars().map(String::from).collect();
    RecordLoss {
        id,
        record: 0,
        step: 200,
        tokens: 3,
        mean: 2.5,
        pieces,
        losses: vec![],
        done: 1,
        total: 1,
        masked: Some(vec![
            MaskedToken {
                at: 1,
                kind: MaskKind::Mask,
                input: "[MASK]".into(),
                top1: "月".into(),
                prob: 0.71,
                target_prob: 0.71,
                correct: true,
            },
            MaskedToken {
                at: 5,
                kind: MaskKind::Random,
                input: "\u{1b}".into(),
                top1: "在".into(),
                prob: 0.12,
                target_prob: 0.02,
                correct: false,
            },
            MaskedToken {
                at: 8,
                kind: MaskKind::Kept,
                input: "霜".into(),
                top1: "霜".into(),
                prob: 0.33,
                target_prob: 0.33,
                correct: true,
            },
        ]),
    }
}

#[test]
fn the_dataset_pane_shows_the_masked_record_and_the_predictions() {
    for t in themes() {
        for (w, h) in SIZES {
            let mut a = mlm_app();
            a.handle_key(ch('1'));
            let eff = a.score_effects();
            let Some(Effect::Send(Command::Score(req))) = eff.last() else {
                panic!("{eff:?}")
            };
            a.update_event(Event::RecordLoss(masked_record(req.id)));
            let what = format!("{:?} {w}x{h}", t.depth);
            // Plain until M: the text, and which key masks it.
            let plain = render_with(&a, &t, w, h);
            assert!(has(&plain, "M masks it"), "{what}\n{}", text(&plain));
            a.handle_key(ch('M'));
            let buf = render_with(&a, &t, w, h);
            assert!(has(&buf, "masked: 2/3 right"), "{what}\n{}", text(&buf));
            no_escape(&buf);
            // [MASK]: reversed, right: ok colour.
            let (x, y) = find(&buf, "月→月").unwrap_or_else(|| panic!("{what}\n{}", text(&buf)));
            let c = &buf[(x, y)];
            assert!(c.modifier.contains(Modifier::REVERSED), "{what}");
            assert_eq!(c.fg, t.ok().fg.unwrap(), "{what}");
            // Random (shown with what the model saw, escaped): underlined
            // and bold, wrong: error colour.
            let (x, y) = find(&buf, "是(").unwrap_or_else(|| panic!("{what}\n{}", text(&buf)));
            let c = &buf[(x, y)];
            assert!(
                c.modifier.contains(Modifier::UNDERLINED | Modifier::BOLD),
                "{what}"
            );
            assert_eq!(c.fg, t.error().fg.unwrap(), "{what}");
            // Kept: underlined, not bold.
            let (x, y) = find(&buf, "霜→霜").unwrap_or_else(|| panic!("{what}\n{}", text(&buf)));
            let c = &buf[(x, y)];
            assert!(c.modifier.contains(Modifier::UNDERLINED), "{what}");
            assert!(!c.modifier.contains(Modifier::BOLD), "{what}");
            assert!(has(&buf, "0.71"), "{what}");
            // M again: the plain record.
            a.handle_key(ch('M'));
            assert!(!has(&render_with(&a, &t, w, h), "masked: 2/3"));
        }
    }
    // On a causal run M says what it is for.
    let mut a = busy_app();
    a.handle_key(ch('M'));
    assert!(a.message.as_deref().unwrap_or("").contains("masked-LM run"));
}
