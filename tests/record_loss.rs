//! Per-token loss in the dataset pane: the losses against the eval path of
//! the real model (the tiny GPT-2 fixture), the window rule of long records,
//! the loss-coloured record rendered at 80x24 and 200x60 in true colour, 256
//! and 16 colours, sorting the record list by loss, and cancelling a sample
//! on the stand-in trainer that `tui --checkpoint` uses.

mod tui_support;

use headsup::app::{Action, Effect};
use headsup::data::{Dataset, Record};
use headsup::model::infer::HostModel;
use headsup::model::score::{token_losses, window_starts};
use headsup::train::*;
use headsup::ui::record_loss::{bucket, bucket_style};
use headsup::ui::{ColorDepth, Theme};
use ratatui::style::{Color, Modifier};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tui_support::*;

fn tiny_fixture() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gpt2_tiny")
}

fn ids_of(p: &headsup::model::pretrained::Pretrained, text: &str) -> Vec<usize> {
    p.tokenizer
        .encode(text)
        .into_iter()
        .map(|t| t as usize)
        .collect()
}

const TEXT: &str = "The quick brown fox jumps over the lazy dog. 床前明月光, 疑是地上霜. \
    Pack my box with five dozen liquor jugs! 🦀 Sphinx of black quartz, judge my vow; \
    how vexingly quick daft zebras jump. The five boxing wizards jump quickly.";

#[test]
fn the_mean_of_the_token_losses_is_the_eval_cross_entropy() {
    let p = headsup::model::pretrained::open(&tiny_fixture()).unwrap();
    let host = HostModel::from_model(&p.model);
    let ids = ids_of(&p, TEXT);
    let block = host.cfg.n_positions;
    assert!(
        ids.len() > block + 1,
        "the text must be longer than a block"
    );
    for n in [2, 7, block + 1] {
        let ids = &ids[..n];
        let losses = token_losses(&host, ids, &AtomicBool::new(false)).unwrap();
        assert_eq!(losses.len(), n - 1);
        let mean = losses.iter().map(|&l| l as f64).sum::<f64>() / losses.len() as f64;
        for fused in [false, true] {
            let eval = p.model.loss(&ids[..n - 1], &ids[1..], 1, n - 1, fused);
            assert!(
                (mean - eval as f64).abs() < 1e-5,
                "n {n}, fused {fused}: mean of token losses {mean} vs eval {eval}"
            );
        }
    }
}

#[test]
fn long_records_are_scored_in_half_overlapping_windows() {
    let p = headsup::model::pretrained::open(&tiny_fixture()).unwrap();
    let host = HostModel::from_model(&p.model);
    let block = host.cfg.n_positions;
    let mut ids = ids_of(&p, TEXT);
    while ids.len() < 2 * block + block / 2 {
        let again = ids.clone();
        ids.extend(again);
    }
    let n = ids.len();
    let losses = token_losses(&host, &ids, &AtomicBool::new(false)).unwrap();
    assert_eq!(losses.len(), n - 1);
    // Each target from the window rule, with the eval forward pass of the
    // real model on that window.
    let starts = window_starts(n, block);
    assert!(starts.len() >= 3, "{starts:?}");
    let vocab = p.model.cfg.vocab_size;
    for (w, &s) in starts.iter().enumerate() {
        let e = (s + block).min(n - 1);
        let logits = p
            .model
            .forward_inference(&ids[s..e], 1, e - s, false, false)
            .logits
            .as_vec();
        let first_new = if w == 0 { 1 } else { starts[w - 1] + block + 1 };
        for t in first_new..=e {
            let row = &logits[(t - 1 - s) * vocab..(t - s) * vocab];
            let want = headsup::model::score::cross_entropy(row, ids[t]);
            let got = losses[t - 1];
            assert!(
                (want - got).abs() < 1e-4,
                "token {t} (window {w} from {s}): {got} vs {want}"
            );
            if w > 0 {
                assert!(t - s >= block / 2, "token {t} has {} of context", t - s);
            }
        }
    }
}

/// An app with a trainer, its first record selected and its losses in.
fn scored_app(losses: &[f32]) -> headsup::app::App {
    let text: String = ('a'..='z').take(losses.len() + 1).collect();
    let ds = Dataset::from_records(
        "t",
        vec![Record {
            title: "letters".into(),
            text: text.clone(),
        }],
    );
    let mut app = app_with(ds);
    app.update_event(Event::Started(run_info()));
    let eff = app.score_effects();
    let [Effect::Send(Command::Score(req))] = eff.as_slice() else {
        panic!("expected one score request: {eff:?}")
    };
    assert!(req.detail);
    assert_eq!(req.records, vec![0]);
    // Asked once: nothing more until the selection or the weights change.
    assert!(app.score_effects().is_empty());
    app.update_event(Event::RecordLoss(RecordLoss {
        id: req.id,
        record: 0,
        step: 0,
        tokens: losses.len(),
        mean: losses.iter().sum::<f32>() / losses.len() as f32,
        pieces: text.chars().map(String::from).collect(),
        losses: losses.to_vec(),
        done: 1,
        total: 1,
        masked: None,
    }));
    app
}

/// Where the cells of `s` start, one char a cell.
fn find(buf: &ratatui::buffer::Buffer, s: &str) -> (u16, u16) {
    let chars: Vec<String> = s.chars().map(String::from).collect();
    let (w, h) = (buf.area.width, buf.area.height);
    for y in 0..h {
        for x in 0..w.saturating_sub(chars.len() as u16) {
            if chars
                .iter()
                .enumerate()
                .all(|(i, c)| buf[(x + i as u16, y)].symbol() == c)
            {
                return (x, y);
            }
        }
    }
    panic!("{s:?} not on screen:\n{}", text(buf))
}

/// The cell showing `c` in the record's text: from column `x0`, rows from `below`.
fn cell_of(buf: &ratatui::buffer::Buffer, c: &str, x0: u16, below: u16) -> (u16, u16) {
    for y in below..buf.area.height {
        for x in x0..buf.area.width {
            if buf[(x, y)].symbol() == c {
                return (x, y);
            }
        }
    }
    panic!("{c:?} not on screen:\n{}", text(buf))
}

#[test]
fn the_record_is_coloured_by_loss_at_every_depth_and_size() {
    // Letters b..f carry one loss of each bucket; 'a' has none.
    let losses = [0.1, 1.0, 2.0, 4.0, 9.0];
    let app = scored_app(&losses);
    for depth in [
        ColorDepth::TrueColor,
        ColorDepth::Ansi256,
        ColorDepth::Ansi16,
    ] {
        let t = Theme::load("dark", None, depth).unwrap();
        for (w, h) in [(80, 24), (200, 60)] {
            let buf = render_with(&app, &t, w, h);
            let s = text(&buf);
            for needle in [
                "mean loss 3.22 nats",
                "loss  <0.5",
                "≥5",
                "hardest: f 9.00 e 4.00",
            ] {
                assert!(s.contains(needle), "{depth:?} {w}x{h}: no {needle:?}\n{s}");
            }
            // The body is below the head, legend and hardest lines.
            let (x0, legend_y) = find(&buf, "loss  <0.5");
            for (k, &l) in losses.iter().enumerate() {
                let letter = ((b'b' + k as u8) as char).to_string();
                let (x, y) = cell_of(&buf, &letter, x0, legend_y + 2);
                let cell = &buf[(x, y)];
                let want = bucket_style(&t, bucket(l));
                assert_eq!(Some(cell.fg), want.fg, "{depth:?} {w}x{h} {letter}");
                assert!(cell.modifier.contains(want.add_modifier), "{letter}");
                let kind_ok = match (depth, cell.fg) {
                    (ColorDepth::TrueColor, Color::Rgb(..)) => true,
                    (ColorDepth::Ansi256, Color::Indexed(_) | Color::Rgb(..)) => {
                        !matches!(cell.fg, Color::Rgb(..))
                    }
                    (ColorDepth::Ansi16, Color::Rgb(..) | Color::Indexed(_)) => false,
                    (ColorDepth::Ansi16, _) => true,
                    _ => false,
                };
                assert!(kind_ok, "{depth:?}: {letter} has {:?}", cell.fg);
            }
            // The hardest bucket reads without colour too: reverse video.
            let (x, y) = cell_of(&buf, "f", x0, legend_y + 2);
            assert!(buf[(x, y)].modifier.contains(Modifier::REVERSED));
            let (x, y) = cell_of(&buf, "b", x0, legend_y + 2);
            assert!(!buf[(x, y)].modifier.contains(Modifier::REVERSED));
        }
    }
}

fn records(n: usize) -> Dataset {
    Dataset::from_records(
        "t",
        (0..n)
            .map(|i| Record {
                title: format!("rec-{i}"),
                text: format!("record {i}"),
            })
            .collect(),
    )
}

#[test]
fn a_scored_sample_sorts_the_list_hardest_first() {
    let mut app = app_with(records(6));
    app.update_event(Event::Started(run_info()));
    let _ = app.score_effects();
    // Sorting before any scores says how to get them.
    app.update(Action::SortNext);
    assert!(app.message.as_deref().unwrap().contains("scores a sample"));
    let eff = app.handle_key(ch('L'));
    let [Effect::Send(Command::Score(req))] = eff.as_slice() else {
        panic!("{eff:?}")
    };
    assert!(!req.detail);
    assert_eq!(req.records, (0..6).collect::<Vec<_>>());
    let means = [1.0, 5.0, 2.0, 4.0, 3.0, 0.5];
    for (r, &m) in means.iter().enumerate() {
        app.update_event(Event::RecordLoss(RecordLoss {
            id: req.id,
            record: r,
            step: 3,
            tokens: 10,
            mean: m,
            pieces: vec![],
            losses: vec![],
            done: r + 1,
            total: 6,
            masked: None,
        }));
    }
    app.update_event(Event::ScoreDone {
        id: req.id,
        scored: 6,
        total: 6,
        cancelled: false,
        note: None,
    });
    app.handle_key(ch('o'));
    assert_eq!(app.browser.visible, vec![1, 3, 4, 2, 0, 5]);
    assert_eq!(app.selected_record().unwrap().title, "rec-1");
    // The hardest record is asked for token by token.
    let eff = app.score_effects();
    assert!(
        matches!(eff.as_slice(), [Effect::Send(Command::Score(r))] if r.detail && r.records == vec![1]),
        "{eff:?}"
    );
    let s = text(&render(&app, 200, 60));
    assert!(s.contains("sorted by loss, hardest first"), "{s}");
    let first = s.lines().find(|l| l.contains("rec-")).unwrap();
    assert!(first.contains("rec-1"), "{first}");
    // The token-weighted mean of the sample.
    let (m, n) = app.record_loss.sample_mean().unwrap();
    assert_eq!(n, 60);
    assert!((m - 15.5 / 6.0).abs() < 1e-6);
    // Again: back to dataset order.
    app.handle_key(ch('o'));
    assert_eq!(app.browser.visible, (0..6).collect::<Vec<_>>());
}

#[test]
fn a_running_sample_is_cancelled_by_the_same_key() {
    let mut app = app_with(records(3));
    app.update_event(Event::Started(run_info()));
    let eff = app.handle_key(ch('L'));
    assert!(matches!(eff.as_slice(), [Effect::Send(Command::Score(_))]));
    let eff = app.handle_key(ch('L'));
    assert_eq!(eff, vec![Effect::Send(Command::CancelScore)]);
}

fn recv_until(h: &TrainerHandle, secs: u64, mut pred: impl FnMut(&Event) -> bool) -> Vec<Event> {
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let e = h
            .events
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no matching event in {secs} s; saw {:?}", seen.len()));
        let done = pred(&e);
        seen.push(e);
        if done {
            return seen;
        }
    }
}

#[test]
fn the_checkpoint_stand_in_scores_and_cancels_a_sample() {
    use headsup::watch::local::{spawn_source, Source};
    let long = TEXT.repeat(8);
    let ds = Dataset::from_records(
        "t",
        (0..400)
            .map(|i| Record {
                title: format!("r{i}"),
                text: format!("{i} {long}"),
            })
            .collect(),
    );
    let h = spawn_source(
        Source::Checkpoint(tiny_fixture()),
        None,
        Arc::new(ds),
        Duration::from_millis(50),
    )
    .unwrap();
    let seen = recv_until(&h, 30, |e| matches!(e, Event::Attention(_)));
    assert!(seen.iter().any(|e| matches!(e, Event::Inspecting { .. })));
    // The selected record, token by token.
    h.commands
        .send(Command::Score(ScoreRequest {
            id: 1,
            records: vec![5],
            detail: true,
        }))
        .unwrap();
    let seen = recv_until(&h, 30, |e| matches!(e, Event::ScoreDone { id: 1, .. }));
    let Some(Event::RecordLoss(r)) = seen.iter().find(|e| matches!(e, Event::RecordLoss(_))) else {
        panic!("no losses: {seen:?}")
    };
    assert_eq!(r.record, 5);
    assert_eq!(r.pieces.len(), r.losses.len() + 1);
    assert!(r.pieces.concat().starts_with("5 The quick"));
    // A sample, cancelled after its first records.
    h.commands
        .send(Command::Score(ScoreRequest {
            id: 2,
            records: (0..400).collect(),
            detail: false,
        }))
        .unwrap();
    recv_until(&h, 30, |e| matches!(e, Event::RecordLoss(r) if r.id == 2));
    let asked = Instant::now();
    h.commands.send(Command::CancelScore).unwrap();
    let seen = recv_until(&h, 30, |e| matches!(e, Event::ScoreDone { id: 2, .. }));
    let Some(Event::ScoreDone {
        scored,
        total,
        cancelled,
        ..
    }) = seen.last()
    else {
        unreachable!()
    };
    assert!(*cancelled, "{seen:?}");
    assert_eq!(*total, 400);
    assert!(*scored < 400, "scored {scored}");
    eprintln!(
        "cancelled after {scored} of 400 records, {:?} after asking",
        asked.elapsed()
    );
    h.commands.send(Command::Stop).unwrap();
    recv_until(&h, 10, |e| matches!(e, Event::Stopped { .. }));
    h.thread.join().unwrap();
}

#[test]
fn a_training_process_scores_records_for_an_attached_viewer() {
    // The copy task, tiny, training on; a viewer attached over the run's
    // socket asks for the losses of a record and gets them, its own id back.
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let exp = headsup::experiment::Experiment {
        sets: [
            "train.max_iters=100000",
            "train.threads=1",
            "train.eval_interval=0",
            "model.n_embd=16",
            "model.n_layer=1",
            "model.block_size=16",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        ..Default::default()
    };
    let p = headsup::experiment::prepare(
        &exp,
        &PrepareOptions {
            out: Some(run.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    let local = headsup::serve::run::spawn_served(&p, |_| {}).unwrap();
    let (viewer, _) = headsup::serve::run::attach(&run).unwrap();
    viewer
        .commands
        .send(Command::Score(ScoreRequest {
            id: 5,
            records: vec![3],
            detail: true,
        }))
        .unwrap();
    let seen = recv_until(&viewer, 60, |e| matches!(e, Event::ScoreDone { id: 5, .. }));
    let Some(Event::RecordLoss(r)) = seen
        .iter()
        .find(|e| matches!(e, Event::RecordLoss(r) if r.id == 5))
    else {
        panic!("no losses for the viewer")
    };
    assert_eq!(r.record, 3);
    assert_eq!(r.pieces.concat(), p.dataset.records[3].text);
    assert_eq!(r.losses.len() + 1, r.pieces.len());
    assert!(r.mean.is_finite() && r.mean > 0.0);
    drop(viewer);
    local.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    recv_until(&local, 60, |e| matches!(e, Event::Stopped { .. }));
    local.thread.join().unwrap();
}

#[test]
fn an_inspected_checkpoint_has_no_training_keys_and_quits_at_once() {
    let mut app = app_with(records(3));
    app.update_event(Event::Started(run_info()));
    app.update_event(Event::Inspecting {
        checkpoint: "/ck/gpt2".into(),
    });
    // The data's sample and the selected record, asked for at once.
    let eff = app.score_effects();
    assert!(
        matches!(eff.as_slice(), [Effect::Send(Command::Score(a)), Effect::Send(Command::Score(b))]
            if !a.detail && b.detail),
        "{eff:?}"
    );
    assert!(app.score_effects().is_empty());
    for c in [' ', 's', 'd'] {
        assert!(app.handle_key(ch(c)).is_empty(), "{c:?}");
        assert_eq!(
            app.message.as_deref(),
            Some("no trainer: inspecting a checkpoint")
        );
    }
    for (w, h) in [(80, 24), (200, 60)] {
        let s = text(&render(&app, w, h));
        assert!(s.contains("no training: inspecting a checkpoint"), "{s}");
        assert!(s.contains("inspecting a checkpoint, no trainer"), "{s}");
    }
    app.handle_key(ch('q'));
    assert!(app.should_quit && !app.confirming_quit());
}
