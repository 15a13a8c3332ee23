//! Acceptance of the inspection views on a real model: the copy task trained
//! for 1000 steps (the built-in sample with one layer, about a minute on one
//! thread), its attention on copy records probed from the checkpoint, the
//! heads table's top head by copy score checked against a plain
//! reimplementation of the copy score, and the fit view of that head at
//! 80x24 showing the stripe.

mod common;
mod tui_support;

use headsup::app::heads::ScoreColumn;
use headsup::app::Action;
use headsup::config::SyntheticTask;
use headsup::model::infer::HostModel;
use headsup::tokenizer::Tokenizer;
use headsup::train::*;
use headsup::ui::heatmap::{FitGeometry, HALF};
use ratatui::style::Color;
use std::path::Path;
use std::time::Instant;
use tui_support::*;

/// Trains the copy sample for 1000 steps into `out`; returns the checkpoint.
fn train_copy(out: &Path) -> std::path::PathBuf {
    let started = Instant::now();
    let o = common::bin()
        .args(["train", "--config", "copy", "--out"])
        .arg(out)
        .args([
            "--set",
            "train.max_iters=1000",
            "--set",
            "model.n_layer=1",
            "--set",
            "train.threads=1",
            "--set",
            "train.eval_interval=1000",
            "--set",
            "train.checkpoint_interval=1000",
        ])
        .output()
        .expect("running headsup train");
    assert!(
        o.status.success(),
        "training failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    eprintln!(
        "trained the copy task for 1000 steps in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    out.join("checkpoints/step-0001000")
}

/// The copy score, written plainly: for each complete record
/// `s|s\n` in the probe, the attention from each second-half token (offset
/// i) to the token after its source (first-half offset i + 1), averaged.
fn copy_score(tokens: &[String], m: &[f32]) -> f64 {
    let n = tokens.len();
    let (mut sum, mut count) = (0.0f64, 0usize);
    for start in (0..n).filter(|&p| p == 0 || tokens[p - 1] == "\n") {
        let Some(bar) = (start..n).find(|&p| tokens[p] == "|") else {
            continue;
        };
        let len = bar - start;
        if len == 0 || bar + len >= n {
            continue;
        }
        for i in 0..len {
            let q = bar + 1 + i;
            assert_eq!(tokens[q], tokens[start + i], "a copy record");
            sum += m[q * n + start + i + 1] as f64;
            count += 1;
        }
    }
    assert!(count > 0, "no complete copy record in the probe");
    sum / count as f64
}

#[test]
fn trained_copy_head_is_found_and_its_stripe_shows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ckpt = train_copy(&dir.path().join("run"));
    let model = headsup::train::load_cpu_model(&ckpt).expect("checkpoint loads");
    let host = HostModel::from_model(&model);
    let tok = Tokenizer::load(&ckpt.join("tokenizer.json")).expect("tokenizer");
    // Copy records the model has not trained on (another seed).
    let probe: String = headsup::data::generate_synthetic(SyntheticTask::Copy, 8, 99)
        .records
        .iter()
        .map(|r| r.text.as_str())
        .collect();
    let ids: Vec<usize> = tok.encode(&probe).iter().map(|&i| i as usize).collect();
    let ids = &ids[..ids.len().min(host.cfg.n_positions)];
    let map = AttentionMap {
        step: 1000,
        tokens: ids.iter().map(|&i| tok.decode(&[i as u32])).collect(),
        n_layer: host.cfg.n_layer,
        n_head: host.cfg.n_head,
        probs: host.attention(ids),
        causal: true,
    };
    let n = map.len();
    assert_eq!(n, 64);
    let plain: Vec<Vec<f64>> = map
        .probs
        .iter()
        .map(|l| l.iter().map(|m| copy_score(&map.tokens, m)).collect())
        .collect();

    let mut app = busy_app();
    app.update_event(Event::Attention(map.clone()));
    app.update(Action::FocusAttention);
    app.update(Action::HeadsTable);
    assert_eq!(app.attention.sort, ScoreColumn::Induction);
    let order = app.attention.table_order();
    let scores = &app.attention.scores;
    for s in scores {
        eprintln!(
            "head {}.{}: table copy {:.3}, plain copy {:.3}, prev {:.3}, first {:.3}, entropy {:.3}",
            s.layer + 1,
            s.head + 1,
            s.induction,
            plain[s.layer][s.head],
            s.prev_token,
            s.sink,
            s.entropy
        );
    }
    // Every score against a plain reimplementation on this real probe.
    for s in scores {
        let w = |q: usize, k: usize| map.weight(s.layer, s.head, q, k) as f64;
        let entropy = (0..n)
            .map(|q| {
                -(0..=q)
                    .map(|k| w(q, k))
                    .filter(|&p| p > 0.0)
                    .map(|p| p * p.ln())
                    .sum::<f64>()
            })
            .sum::<f64>()
            / n as f64;
        let prev = (1..n).map(|q| w(q, q - 1)).sum::<f64>() / (n - 1) as f64;
        let first = (1..n).map(|q| w(q, 0)).sum::<f64>() / (n - 1) as f64;
        let mut ind = Vec::new();
        for q in 0..n {
            let keys: std::collections::BTreeSet<usize> = (0..q)
                .filter(|&j| map.tokens[j] == map.tokens[q])
                .map(|j| j + 1)
                .collect();
            if !keys.is_empty() {
                ind.push(keys.iter().map(|&k| w(q, k)).sum::<f64>());
            }
        }
        let ind = ind.iter().sum::<f64>() / ind.len() as f64;
        for (name, got, want) in [
            ("entropy", s.entropy, entropy),
            ("prev", s.prev_token, prev),
            ("first", s.sink, first),
            ("induction", s.induction, ind),
        ] {
            assert!(
                (got as f64 - want).abs() < 1e-5,
                "head {}.{} {name}: {got} vs plain {want}",
                s.layer + 1,
                s.head + 1
            );
        }
    }
    // Rollout of the one layer: rows of 0.5 * mean + 0.5 * I, renormalised.
    let r = headsup::app::heads::rollout(&map, 0);
    for q in [0, 17, 63] {
        let mean = |k: usize| {
            (0..map.n_head)
                .map(|h| map.weight(0, h, q, k) as f64)
                .sum::<f64>()
                / map.n_head as f64
        };
        let total: f64 = (0..n)
            .map(|k| mean(k) + if k == q { 1.0 } else { 0.0 })
            .sum();
        for k in 0..n {
            let want = (mean(k) + if k == q { 1.0 } else { 0.0 }) / total;
            assert!((r[q * n + k] as f64 - want).abs() < 1e-5, "rollout {q},{k}");
        }
    }

    let top = scores[order[0]];
    let top_plain = plain[top.layer][top.head];
    assert!(
        top_plain >= 0.8,
        "the table's top head {}.{} has copy score {top_plain:.3} < 0.8",
        top.layer + 1,
        top.head + 1
    );
    // It is the best head by the plain score too.
    let best_plain = plain.iter().flatten().cloned().fold(0.0, f64::max);
    assert_eq!(top_plain, best_plain);
    // The table shows it on its first row.
    let screen = text(&render(&app, 80, 24));
    assert!(
        screen.contains(&format!("{}.{}", top.layer + 1, top.head + 1)),
        "{screen}"
    );

    // Enter opens it; zoomed at 80x24 the fit view shows the stripe: in
    // most pixel rows of second-half queries the brightest pixel covers the
    // key after the source (q - 8).
    app.update(Action::Input);
    assert_eq!(
        (app.attention.layer, app.attention.head),
        (top.layer, top.head)
    );
    assert!(app.attention.fit);
    app.update(Action::Zoom);
    let theme = theme();
    let buf = render_with(&app, &theme, 80, 24);
    let s = text(&buf);
    assert!(s.contains(&format!("head {}/", top.head + 1)), "{s}");
    // Where the view put the matrix: the pane's inner area less the side
    // list (24 columns), the gutter and the legend.
    let (x0, y0) = (0..24u16)
        .flat_map(|y| (0..80u16).map(move |x| (x, y)))
        .find(|&(x, y)| buf[(x, y)].symbol() == HALF)
        .expect("half blocks on screen");
    let g = FitGeometry::new(
        n,
        ratatui::layout::Rect::new(x0, y0, 80 - 2 - 24 - 1, 24 - 3 - 1),
    );
    let heat = |c: Color| -> f32 {
        // The weight whose colour this is (the gradient is monotone in it).
        (0..=100)
            .map(|i| i as f32 / 100.0)
            .min_by_key(|&w| {
                let (Color::Rgb(a, b, c2), Color::Rgb(x, y, z)) = (theme.heat(w), c) else {
                    return u32::MAX;
                };
                let d = |p: u8, q: u8| (p as i32 - q as i32).unsigned_abs();
                d(a, x) + d(b, y) + d(c2, z)
            })
            .unwrap_or(0.0)
    };
    let second_half: Vec<usize> = (0..n)
        .filter(|&q| {
            (0..q)
                .rev()
                .take_while(|&p| map.tokens[p] != "\n")
                .any(|p| map.tokens[p] == "|")
                && q >= 9
        })
        .collect();
    let (mut on, mut rows) = (0, 0);
    for py in 0..g.pixels {
        let qs = g.cells(py, n);
        if !qs.clone().all(|q| second_half.contains(&q)) {
            continue;
        }
        let line = y0 + (py / 2) as u16;
        let value = |px: usize| {
            let c = &buf[(x0 + px as u16, line)];
            heat(if py % 2 == 0 { c.fg } else { c.bg })
        };
        let brightest = (0..g.pixels)
            .max_by(|&a, &b| value(a).total_cmp(&value(b)))
            .expect("pixels");
        let expected: Vec<usize> = qs.map(|q| g.pixel_of(q - 8)).collect();
        rows += 1;
        if expected.contains(&brightest) {
            on += 1;
        }
    }
    eprintln!("{on} of {rows} second-half pixel rows brightest on the stripe\n{s}");
    assert!(rows >= 8 && on * 2 > rows, "{on} of {rows}\n{s}");
}
