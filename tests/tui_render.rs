//! Rendering the workbench into a TestBackend: every pane at 80x24 and
//! 200x60, events folded into state, the status bar, small sizes, untrusted text.

mod tui_support;

use headsup::app::{InputMode, Pane, RunState};
use headsup::data::{Dataset, Record};
use headsup::train::*;
use headsup::ui::{ColorDepth, Theme};
use rand::{Rng, SeedableRng};
use ratatui::style::Modifier;
use tui_support::*;

#[test]
fn every_pane_renders_at_80x24_and_200x60() {
    let app = busy_app();
    for (w, h) in [(80, 24), (200, 60)] {
        let s = text(&render(&app, w, h));
        for needle in [
            "dataset",
            "alpha.txt",
            "loss",
            "attention",
            "playground",
            "testrun",
            "running",
            "step 500/1000",
        ] {
            assert!(s.contains(needle), "{w}x{h}: missing {needle:?}\n{s}");
        }
    }
    let big = text(&render(&app, 200, 60));
    for needle in [
        "best val 3.100",
        "layer 1/2 head 1/4 · step 250",
        "top keys",
        "12.3k tok/s",
        "vocab",
        "temp 0.8",
    ] {
        assert!(big.contains(needle), "200x60: missing {needle:?}\n{big}");
    }
}

#[test]
fn zoom_shows_one_pane_full_screen() {
    let mut app = busy_app();
    app.update(headsup::app::Action::FocusAttention);
    app.update(headsup::app::Action::Zoom);
    let s = text(&render(&app, 80, 24));
    assert!(s.contains("attention"));
    assert!(!s.contains("playground"), "{s}");
    assert!(!s.contains("alpha.txt"), "{s}");
}

#[test]
fn status_bar_follows_the_run_state() {
    let mut app = busy_app();
    app.update_event(Event::Paused {
        step: 500,
        reason: Some("non-finite loss".into()),
    });
    assert_eq!(app.state, RunState::Paused(Some("non-finite loss".into())));
    assert!(text(&render(&app, 200, 60)).contains("paused: non-finite loss"));
    app.update_event(Event::Resumed { step: 500 });
    assert_eq!(app.state, RunState::Running);
    app.update_event(Event::Failed {
        step: 510,
        error: "out of memory".into(),
    });
    let s = text(&render(&app, 80, 24));
    assert!(s.contains("failed: out of memory"), "{s}");
    assert_eq!(app.step, 510);
}

#[test]
fn events_fold_into_state() {
    let mut app = app();
    assert_eq!(app.state, RunState::Starting);
    app.update_event(Event::Started(run_info()));
    assert_eq!(app.state, RunState::Running);
    app.update_event(step(10, 3.5));
    app.update_event(step(20, f32::NAN));
    assert_eq!(app.step, 20);
    assert_eq!(app.last_loss, Some(3.5));
    assert_eq!(app.loss.train.len(), 1, "non-finite losses are not plotted");
    app.update_event(Event::Eval(EvalStats {
        step: 20,
        train_loss: 3.0,
        val_loss: 3.2,
        best_val_loss: 3.2,
        masked: None,
    }));
    app.update_event(Event::Eval(EvalStats {
        step: 40,
        train_loss: 2.0,
        val_loss: 3.4,
        best_val_loss: 3.2,
        masked: None,
    }));
    assert_eq!(app.loss.best_val, Some(3.2));
    app.update_event(Event::Attention(attention(&["a", "b", "c"], 2, 2)));
    assert!(app.attention.map.is_some());
    app.update_event(Event::Token {
        id: 7,
        text: "hel".into(),
        prob: 0.5,
        alts: None,
    });
    app.update_event(Event::Token {
        id: 7,
        text: "lo".into(),
        prob: 0.5,
        alts: None,
    });
    app.update_event(Event::GenerationDone {
        id: 7,
        tokens: 2,
        tokens_per_sec: 42.0,
    });
    app.update(headsup::app::Action::FocusPlayground);
    let s = text(&render(&app, 200, 60));
    assert!(s.contains("hello [2 tokens, 42.0 tok/s]"), "{s}");
    app.update_event(Event::Finished { step: 1000 });
    assert_eq!(app.state, RunState::Finished);
    assert!(text(&render(&app, 80, 24)).contains("finished"));
}

#[test]
fn loss_history_stays_bounded() {
    let mut app = app();
    for i in 0..50_000 {
        app.update_event(step(i, 2.0 + (i % 10) as f32 * 0.01));
    }
    assert!(app.loss.train.len() <= headsup::app::series::DEFAULT_CAP);
    assert_eq!(app.loss.train.last().map(|p| p.0), Some(49_999.0));
    render(&app, 80, 24);
}

#[test]
fn tiny_terminals_show_a_message_and_never_panic() {
    let app = busy_app();
    let s = text(&render(&app, 59, 20));
    assert!(s.contains("terminal too small: 59x20"), "{s}");
    assert!(text(&render(&app, 200, 15)).contains("need at least 60x16"));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut app = busy_app();
    for i in 0..200 {
        let w = rng.gen_range(1..=200);
        let h = rng.gen_range(1..=60);
        app.zoom = i % 3 == 0;
        app.mode = if i % 7 == 0 {
            InputMode::Help { editing: false }
        } else {
            InputMode::Normal
        };
        app.attention.overview = i % 2 == 0;
        app.focus = Pane::ALL[i % 4];
        let buf = render(&app, w, h);
        if w < 60 || h < 16 {
            let first: String = text(&buf)
                .chars()
                .filter(|c| !c.is_whitespace())
                .take(8)
                .collect();
            assert!(
                "terminaltoosmall".starts_with(&first) || first.starts_with("terminal"),
                "{w}x{h}: {first}"
            );
        }
    }
    render(&app, 1, 1);
}

const NASTY: &str = "evil\x1b[31mred\x1b]0;title\x07\rback\x08\u{202E}rtl\u{200B}zw";

fn assert_clean(buf: &ratatui::buffer::Buffer) {
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            let sym = buf[(x, y)].symbol();
            assert!(
                !sym.chars().any(headsup::sanitize::is_unsafe),
                "raw control at {x},{y}: {sym:?}"
            );
        }
    }
}

#[test]
fn untrusted_text_is_escaped_everywhere() {
    let ds = Dataset::from_records(
        "nasty",
        vec![Record {
            title: NASTY.into(),
            text: format!("{NASTY}\nmore {NASTY}"),
        }],
    );
    let mut app = app_with(ds);
    app.update_event(Event::Started(run_info()));
    app.update_event(Event::Attention(attention(
        &[NASTY, "\x1b", "\u{202E}", "ok"],
        1,
        1,
    )));
    app.update_event(Event::Token {
        id: 1,
        text: NASTY.into(),
        prob: 0.1,
        alts: None,
    });
    app.update_event(Event::Log(NASTY.into()));
    app.update_event(Event::Failed {
        step: 1,
        error: NASTY.into(),
    });
    for (w, h) in [(80, 24), (200, 60), (60, 16)] {
        let buf = render(&app, w, h);
        assert_clean(&buf);
        assert!(
            text(&buf).contains("\\e[31m"),
            "{w}x{h}: escape shown as text"
        );
    }
    app.update(headsup::app::Action::FocusPlayground);
    app.update(headsup::app::Action::Zoom);
    let buf = render(&app, 80, 24);
    assert_clean(&buf);
    assert!(text(&buf).contains("evil\\e[31mred"), "{}", text(&buf));
}

#[test]
fn record_text_shows_tokens_in_alternating_colours() {
    let app = app();
    let theme = Theme::builtin("dark", ColorDepth::TrueColor).expect("theme");
    let buf = render(&app, 200, 60);
    let s = text(&buf);
    assert!(s.contains("alpha.txt · 55 tokens"), "{s}");
    // Char fallback: "the" -> t, h, e in alternating backgrounds.
    let (row, col) = s
        .lines()
        .enumerate()
        .find_map(|(y, l)| {
            l.find("the quick brown fox jumps")
                .map(|b| (y, l[..b].chars().count()))
        })
        .expect("record text on screen");
    let bg = |dx: usize| buf[(col as u16 + dx as u16, row as u16)].bg;
    assert_eq!(bg(0), theme.token(0).bg.expect("bg"));
    assert_eq!(bg(1), theme.token(1).bg.expect("bg"));
    assert_eq!(bg(2), theme.token(0).bg.expect("bg"));
}

/// The rows of `buf` as strings.
fn rows(buf: &ratatui::buffer::Buffer) -> Vec<String> {
    text(buf).lines().map(String::from).collect()
}

#[test]
fn loss_pane_shows_the_gradient_norm_and_clip_threshold() {
    let mut app = busy_app();
    let theme = theme();
    // The last step's norm was clipped (above train.grad_clip = 1.0).
    app.update_event(Event::Step(StepStats {
        step: 510,
        loss: 1.5,
        lr: 1e-3,
        grad_norm: 3.5,
        tokens_per_sec: 12_345.0,
        eta_secs: 10.0,
        elapsed_secs: 11.0,
    }));
    assert_eq!(app.loss.grad_norm.len(), 51);
    app.update(headsup::app::Action::FocusLoss);
    app.update(headsup::app::Action::Zoom);
    // Wide: learning rate and gradient norm side by side.
    let buf = render_with(&app, &theme, 200, 60);
    let s = text(&buf);
    assert!(s.contains("grad 3.50 (clip 1.00)"), "{s}");
    assert!(s.contains("lr 1.1e-3"), "{s}");
    assert!(s.contains("grad 3.68"), "top of the grad chart: {s}");
    // The header's value is in the warning colour (it was clipped).
    let (y, line) = rows(&buf)
        .into_iter()
        .enumerate()
        .find(|(_, l)| l.contains("grad 3.50"))
        .expect("header");
    let x = line[..line.find("3.50").expect("value")].chars().count() as u16;
    assert_eq!(buf[(x, y as u16)].fg, theme.warn().fg.expect("warn"));
    // The clip threshold is a dotted line in the warning colour: a row of the
    // lower right chart has many warn-coloured dots.
    let warn = theme.warn().fg.expect("warn");
    let dotted = (0..buf.area.height).any(|y| {
        (100..buf.area.width)
            .filter(|&x| buf[(x, y)].fg == warn && buf[(x, y)].symbol() == "•")
            .count()
            > 30
    });
    assert!(dotted, "no clip line\n{s}");

    // Narrow (80x24 zoomed: 78 columns inside, 120x40 unzoomed: 58): one
    // chart at a time, `n` switches from the learning rate to the norm.
    app.update(headsup::app::Action::Zoom);
    let s = text(&render_with(&app, &theme, 120, 40));
    assert!(s.contains("lr 1.1e-3") && !s.contains("grad 3.68"), "{s}");
    assert!(s.contains("grad 3.50"), "header at 120x40: {s}");
    app.handle_key(ch('n'));
    assert!(app.loss.show_grad);
    let s = text(&render_with(&app, &theme, 120, 40));
    assert!(s.contains("grad 3.68") && !s.contains("lr 1.1e-3"), "{s}");
    // 80x24: the header still shows the norm.
    let s = text(&render_with(&app, &theme, 80, 24));
    assert!(s.contains("grad 3.50"), "{s}");
}

#[test]
fn record_list_shows_each_records_text() {
    let app = app();
    let s = text(&render(&app, 200, 60));
    // Cut to the list's width (33 columns at 200x60).
    assert!(s.contains("   0 alpha.txt the quick brown  3.1k B"), "{s}");
    assert!(s.contains("   1 beta.txt abcabcabc inducti record"), "{s}");
    assert!(s.contains("   4 synthetic-1 record number  the"), "{s}");
    // Wide characters are measured by display width.
    let wide = s.lines().find(|l| l.contains("gamma.txt")).expect("gamma");
    assert!(wide.contains("gamma.txt 床"), "{wide}");
    let s80 = text(&render(&app, 80, 24));
    assert!(s80.contains("   1 beta.txt abc"), "{s80}");
}

#[test]
fn raw_train_curve_stays_visible_under_the_ema() {
    let mut app = busy_app();
    assert!(app.loss.smooth);
    app.update(headsup::app::Action::FocusLoss);
    app.update(headsup::app::Action::Zoom);
    let theme = theme();
    let buf = render_with(&app, &theme, 120, 40);
    let count = |c: ratatui::style::Color| {
        (0..40u16)
            .flat_map(|y| (0..120u16).map(move |x| (x, y)))
            .filter(|&(x, y)| {
                let cell = &buf[(x, y)];
                cell.fg == c
                    && cell
                        .symbol()
                        .chars()
                        .all(|ch| ('\u{2801}'..='\u{28ff}').contains(&ch))
            })
            .count()
    };
    let raw = count(theme.loss_train());
    let ema = count(theme.loss_smooth());
    assert!(raw >= 20 && ema >= 20, "raw {raw} cells, ema {ema} cells");
    assert_ne!(theme.loss_train(), theme.border(false).fg.expect("border"));
}

#[test]
fn generated_tokens_are_coloured_by_probability_and_probe_the_attention() {
    let mut app = busy_app();
    app.handle_key(ch('4'));
    app.handle_key(ch('i'));
    type_str(&mut app, "ab|");
    let effects = app.handle_key(key(crossterm::event::KeyCode::Enter));
    let [headsup::app::Effect::Send(Command::Generate(req))] = effects.as_slice() else {
        panic!("{effects:?}");
    };
    let id = req.id;
    for (text, prob) in [("SURE", 0.9f32), ("MAYBE", 0.3), ("ODD", 0.02)] {
        app.update_event(Event::Token {
            id,
            text: text.into(),
            prob,
            alts: None,
        });
    }
    app.update_event(Event::GenerationDone {
        id,
        tokens: 3,
        tokens_per_sec: 50.0,
    });
    for depth in [
        ColorDepth::TrueColor,
        ColorDepth::Ansi256,
        ColorDepth::Ansi16,
    ] {
        let theme = Theme::builtin("dark", depth).expect("theme");
        for (w, h) in [(80, 24), (200, 60)] {
            let buf = render_with(&app, &theme, w, h);
            let s = text(&buf);
            let (y, line) = s
                .lines()
                .enumerate()
                .find(|(_, l)| l.contains("SUREMAYBEODD"))
                .unwrap_or_else(|| panic!("{depth:?} {w}x{h}: transcript\n{s}"));
            let x = |needle: &str| line[..line.find(needle).expect("token")].chars().count() as u16;
            let fg = |needle: &str| buf[(x(needle), y as u16)].fg;
            assert_eq!(fg("SURE"), theme.ok().fg.expect("ok"), "{depth:?}");
            assert_eq!(fg("MAYBE"), theme.warn().fg.expect("warn"), "{depth:?}");
            assert_eq!(fg("ODD"), theme.error().fg.expect("error"), "{depth:?}");
        }
    }
    // Leaving the input line, p probes the prompt and its answer.
    app.handle_key(key(crossterm::event::KeyCode::Esc));
    assert_eq!(
        app.handle_key(ch('p')),
        vec![headsup::app::Effect::Send(Command::Probe {
            text: Some("ab|SUREMAYBEODD".into())
        })]
    );
}

#[test]
fn the_token_cursor_shows_the_alternatives_and_entropy_of_a_step() {
    let mut app = busy_app();
    app.handle_key(ch('4'));
    app.handle_key(ch('i'));
    type_str(&mut app, "ab|");
    let effects = app.handle_key(key(crossterm::event::KeyCode::Enter));
    let [headsup::app::Effect::Send(Command::Generate(req))] = effects.as_slice() else {
        panic!("{effects:?}");
    };
    let id = req.id;
    let step = |h: f32, top: &[(&str, f32)]| {
        Some(TokenAlts::rounded(
            h,
            top.iter().map(|&(t, p)| (t.to_string(), p)),
        ))
    };
    let tokens = [
        ("SURE", 0.9f32, step(0.4, &[("SURE", 0.9), ("x", 0.05)])),
        (
            "MAYBE",
            0.3,
            step(1.61, &[("ODD", 0.55), ("MAYBE", 0.3), ("\u{1b}[2J", 0.02)]),
        ),
        ("ODD", 0.02, None),
    ];
    for (text, prob, alts) in tokens {
        app.update_event(Event::Token {
            id,
            text: text.into(),
            prob,
            alts,
        });
    }
    app.update_event(Event::GenerationDone {
        id,
        tokens: 3,
        tokens_per_sec: 50.0,
    });
    // While typing, left/right edit the input line; out of it they move the
    // token cursor (starting on the last token).
    app.handle_key(key(crossterm::event::KeyCode::Left));
    assert_eq!(app.playground.token_cursor, None);
    app.handle_key(key(crossterm::event::KeyCode::Esc));
    for k in ["left", "left", "right", "left"] {
        let code = if k == "left" {
            crossterm::event::KeyCode::Left
        } else {
            crossterm::event::KeyCode::Right
        };
        app.handle_key(key(code));
    }
    let (text_sel, tok) = app.playground.selected_token().expect("a selection");
    assert_eq!((text_sel, tok.prob), ("MAYBE", 0.3));
    for depth in [
        ColorDepth::TrueColor,
        ColorDepth::Ansi256,
        ColorDepth::Ansi16,
    ] {
        let theme = Theme::builtin("dark", depth).expect("theme");
        for (w, h) in [(80, 24), (200, 60)] {
            let buf = render_with(&app, &theme, w, h);
            let s = text(&buf);
            let find = |needle: &str| -> (u16, u16) {
                let (y, line) = s
                    .lines()
                    .enumerate()
                    .find(|(_, l)| l.contains(needle))
                    .unwrap_or_else(|| panic!("{depth:?} {w}x{h}: no {needle:?}\n{s}"));
                let x = line[..line.find(needle).unwrap()].chars().count();
                (x as u16, y as u16)
            };
            // The selected token is reversed and keeps its colour; the
            // others are not reversed.
            let (x, y) = find("SUREMAYBEODD");
            let sel = &buf[(x + 4, y)];
            assert_eq!(sel.symbol(), "M");
            assert!(
                sel.modifier.contains(Modifier::REVERSED),
                "{depth:?} {w}x{h}"
            );
            assert_eq!(sel.fg, theme.warn().fg.expect("warn"));
            assert!(!buf[(x, y)].modifier.contains(Modifier::REVERSED));
            // The step: probability and entropy, then the alternatives in
            // order, each in its probability's colour, escaped.
            let (hx, hy) = find("\"MAYBE\" p 0.300 · entropy 1.61 nats");
            assert!(hy > y, "below the transcript");
            assert_eq!(buf[(hx + 1, hy)].fg, theme.warn().fg.expect("warn"));
            assert!(buf[(hx + 1, hy)].modifier.contains(Modifier::REVERSED));
            let (ax, ay) = find("top: \"ODD\" 0.550");
            assert_eq!(ay, hy + 1);
            assert_eq!(buf[(ax + 6, ay)].fg, theme.ok().fg.expect("ok"));
            let (mx, _) = find("\"MAYBE\" 0.300");
            let cell = &buf[(mx + 1, ay)];
            assert_eq!(cell.fg, theme.warn().fg.expect("warn"));
            assert!(
                cell.modifier.contains(Modifier::REVERSED),
                "the sampled one"
            );
            if w == 200 {
                let (ex, _) = find("\"\\e[2J\" 0.020");
                assert_eq!(buf[(ex + 1, ay)].fg, theme.error().fg.expect("error"));
            }
            assert!(!s.contains('\u{1b}'), "escaped");
        }
    }
    // A token from a trainer that sends no alternatives says so.
    app.handle_key(key(crossterm::event::KeyCode::Right));
    let s = text(&render(&app, 200, 60));
    assert!(s.contains("\"ODD\" p 0.020"), "{s}");
    assert!(s.contains("(not sent by this trainer)"), "{s}");
}

#[test]
fn a_failed_checkpoint_stays_in_the_status_bar_until_one_succeeds() {
    let mut app = busy_app();
    app.update_event(Event::CheckpointFailed {
        step: 300,
        path: "/tmp/r/checkpoints/step-0000300".into(),
        error: "needs 1.3 MB, 412.0 kB free on /tmp/r".into(),
        latest: Some(200),
        last: false,
        next_try: Some(400),
    });
    // Other messages come and go; the warning stays, at 80 columns too.
    app.update_event(Event::Log("something else happened".into()));
    let s = text(&render(&app, 80, 24));
    let status = s.lines().last().unwrap_or("").to_string();
    assert!(status.contains("checkpoint step 300"), "{status}");
    assert!(app.final_checkpoint_lost.is_none());
    app.update_event(Event::Checkpoint {
        step: 400,
        path: "/tmp/r/checkpoints/step-0000400".into(),
    });
    assert!(app.checkpoint_warning.is_none());
    assert!(!text(&render(&app, 200, 60))
        .lines()
        .last()
        .unwrap_or("")
        .contains("not written"));
    // The final one lost: the warning stays for good, and says what is lost.
    app.update_event(Event::CheckpointFailed {
        step: 500,
        path: "/tmp/r/checkpoints/step-0000500".into(),
        error: "No space left on device (os error 28)".into(),
        latest: Some(400),
        last: true,
        next_try: None,
    });
    app.update_event(Event::Stopped { step: 500 });
    let s = text(&render(&app, 200, 60));
    let status = s.lines().last().unwrap_or("").to_string();
    assert!(status.contains("steps 401..500 are lost"), "{status}");
    assert!(app
        .final_checkpoint_lost
        .as_deref()
        .is_some_and(|l| l.contains("steps 401..500 are lost")));
}
