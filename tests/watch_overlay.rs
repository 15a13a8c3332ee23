//! `headsup watch A B ...` in a `TestBackend`: the loss chart overlays the
//! runs with one legend entry per run (named after its run directory) in a
//! colour of its own, aligned by step or, after `x`, by tokens seen; the
//! colours stay within the 16 ANSI colours (the ansi16 theme); the pane's
//! title says that attention and playground show the first run. Also the
//! quit question (stop / leave / cancel) and the continue question.

mod tui_support;

use headsup::app::{Effect, OverlayRun, RunState};
use headsup::train::{Command, Event};
use headsup::ui::{ColorDepth, Theme};
use ratatui::style::Color;
use tui_support::*;

fn overlaid() -> headsup::app::App {
    let mut a = busy_app();
    a.run_dir = "/runs/alpha".into();
    a.loss.overlay = vec![OverlayRun {
        name: "beta".into(),
        // Twice the tokens per step of the first run (1024).
        tokens_per_step: Some(2048.0),
        train: (1..=40)
            .map(|i| (i as f64 * 10.0, 3.5 - i as f64 * 0.04))
            .collect(),
        val: vec![(200.0, 2.8)],
    }];
    a.handle_key(ch('2'));
    a.handle_key(ch('z'));
    a
}

#[test]
fn two_runs_two_legend_entries_by_step_then_by_tokens() {
    let a = overlaid();
    let screen = text(&render(&a, 120, 40));
    let legend: Vec<&str> = screen
        .lines()
        .filter(|l| l.contains("│alpha") || l.contains("│beta"))
        .collect();
    assert_eq!(legend.len(), 2, "one legend entry per run:\n{screen}");
    assert!(screen.contains("2 runs by step (x)"), "{screen}");
    assert!(
        screen.contains("attention, playground: the first"),
        "{screen}"
    );
    // By step, the x axis ends at the longest run's last step (500).
    assert!(
        screen.contains("500┃") || screen.contains(" 500"),
        "{screen}"
    );
    let mut a = a;
    assert!(a.handle_key(ch('x')).is_empty());
    assert!(a.loss.by_tokens);
    let screen = text(&render(&a, 120, 40));
    assert!(screen.contains("2 runs by tokens (x)"), "{screen}");
    // beta: 400 steps x 2048 = 819.2k tokens; alpha: 500 x 1024 = 512k.
    assert!(screen.contains("819.2k tok"), "{screen}");
}

#[test]
fn the_runs_colours_are_ansi_colours() {
    let a = overlaid();
    let theme = Theme::builtin("ansi16", ColorDepth::Ansi16).expect("ansi16");
    let buf = render_with(&a, &theme, 120, 40);
    let mut seen = std::collections::BTreeSet::new();
    for cell in buf.content() {
        if let Color::Rgb(..) | Color::Indexed(_) = cell.fg {
            panic!(
                "a colour outside the 16: {:?} at {:?}",
                cell.fg,
                cell.symbol()
            );
        }
        if cell.symbol() != " " {
            seen.insert(format!("{:?}", cell.fg));
        }
    }
    // The two runs' legend names in two different colours.
    let colour_of = |name: &str| {
        let screen = text(&buf);
        let (row, line) = screen
            .lines()
            .enumerate()
            .find(|(_, l)| l.contains(&format!("│{name}")))
            .expect("legend entry");
        let at = line.find(&format!("│{name}")).unwrap();
        let col = line[..at].chars().count() + 1;
        buf[(col as u16, row as u16)].fg
    };
    assert_ne!(colour_of("alpha"), colour_of("beta"), "{seen:?}");
}

#[test]
fn quit_asks_stop_leave_or_cancel() {
    let mut a = busy_app();
    a.handle_key(ch('q'));
    assert!(text(&render(&a, 80, 24)).contains("d / l: leave (detach)"));
    assert!(a.handle_key(key(crossterm::event::KeyCode::Esc)).is_empty());
    assert!(!a.confirming_quit() && !a.should_quit);
    a.handle_key(ch('q'));
    assert_eq!(a.handle_key(ch('l')), vec![Effect::Detach]);
    a.handle_key(ch('q'));
    assert_eq!(a.handle_key(ch('s')), vec![Effect::Send(Command::Stop)]);
    assert!(a.stopping);
}

#[test]
fn c_on_a_finished_run_asks_how_many_more_steps() {
    let mut a = busy_app();
    a.handle_key(ch('c'));
    assert!(!a.asking_continue(), "only a finished run continues");
    a.update_event(Event::Finished { step: 1000 });
    a.handle_key(ch('c'));
    assert!(a.asking_continue());
    assert!(text(&render(&a, 80, 24)).contains("More steps: 1000"));
    for _ in 0..4 {
        a.handle_key(key(crossterm::event::KeyCode::Backspace));
    }
    a.handle_key(ch('2'));
    a.handle_key(ch('5'));
    let eff = a.handle_key(key(crossterm::event::KeyCode::Enter));
    assert_eq!(
        eff,
        vec![Effect::Send(Command::Continue { max_iters: 1025 })]
    );
    assert!(!a.asking_continue());
    assert_eq!(a.state, RunState::Finished);
}
