//! Key handling: focus, pause, quit confirmation, the playground's input
//! line, history and slash commands, search, key map configuration.

mod tui_support;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use headsup::app::{Action, Effect, KeyMap, KeyMapError, Pane, RunState};
use headsup::train::*;
use ratatui::layout::Rect;
use std::collections::BTreeMap;
use tui_support::*;

#[test]
fn focus_cycles_with_tab_and_digits() {
    let mut app = busy_app();
    assert_eq!(app.focus, Pane::Browser);
    for want in [Pane::Loss, Pane::Attention, Pane::Playground, Pane::Browser] {
        app.handle_key(key(KeyCode::Tab));
        assert_eq!(app.focus, want);
    }
    app.handle_key(key(KeyCode::BackTab));
    assert_eq!(app.focus, Pane::Playground);
    app.handle_key(ch('2'));
    assert_eq!(app.focus, Pane::Loss);
    app.handle_key(ch('z'));
    assert!(app.zoom);
}

#[test]
fn space_pauses_and_resumes() {
    let mut app = busy_app();
    assert_eq!(app.handle_key(ch(' ')), vec![Effect::Send(Command::Pause)]);
    app.update_event(Event::Paused {
        step: 500,
        reason: None,
    });
    assert_eq!(app.handle_key(ch(' ')), vec![Effect::Send(Command::Resume)]);
    assert_eq!(app.handle_key(ch('s')), vec![Effect::Send(Command::Save)]);
    assert_eq!(app.handle_key(ch('e')), vec![Effect::Export]);
}

#[test]
fn quit_asks_then_stops_and_waits_for_stopped() {
    let mut app = busy_app();
    assert!(app.handle_key(ch('q')).is_empty());
    assert!(app.confirming_quit());
    assert!(text(&render(&app, 80, 24)).contains("quit?"));
    // Anything else cancels.
    assert!(app.handle_key(ch('n')).is_empty());
    assert!(!app.confirming_quit() && !app.should_quit);
    app.handle_key(ch('q'));
    assert_eq!(app.handle_key(ch('y')), vec![Effect::Send(Command::Stop)]);
    assert!(app.stopping && !app.should_quit);
    assert!(text(&render(&app, 80, 24)).contains("stopping, saving checkpoint"));
    app.update_event(Event::Stopped { step: 500 });
    assert!(app.should_quit);
    assert_eq!(app.state, RunState::Stopped);
}

#[test]
fn quit_after_finish_needs_no_confirmation() {
    let mut app = busy_app();
    app.update_event(Event::Finished { step: 1000 });
    assert!(app.handle_key(ch('q')).is_empty());
    assert!(app.should_quit);
}

#[test]
fn ctrl_c_stops_without_asking() {
    let mut app = busy_app();
    let effects = app.handle_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    assert_eq!(effects, vec![Effect::Send(Command::Stop)]);
}

#[test]
fn playground_input_generate_and_history() {
    let mut app = busy_app();
    app.handle_key(ch('4'));
    // Not editing yet: space still pauses.
    assert_eq!(app.handle_key(ch(' ')), vec![Effect::Send(Command::Pause)]);
    app.handle_key(ch('i'));
    assert!(app.editing());
    // Now keys go to the input, including q and space.
    assert!(type_str(&mut app, "q  x").is_empty());
    assert!(!app.confirming_quit());
    app.handle_key(key(KeyCode::Backspace));
    app.handle_key(key(KeyCode::Home));
    app.handle_key(ch('>'));
    app.handle_key(key(KeyCode::End));
    app.handle_key(ch('!'));
    assert_eq!(app.playground.input.text, ">q  !");
    let effects = app.handle_key(key(KeyCode::Enter));
    let [Effect::Send(Command::Generate(req))] = effects.as_slice() else {
        panic!("expected a generate request, got {effects:?}");
    };
    assert_eq!(req.prompt, ">q  !");
    assert_eq!(req.settings, settings());
    let id = req.id;
    type_str(&mut app, "second");
    app.handle_key(key(KeyCode::Enter));
    type_str(&mut app, "draft");
    app.handle_key(key(KeyCode::Up));
    assert_eq!(app.playground.input.text, "second");
    app.handle_key(key(KeyCode::Up));
    assert_eq!(app.playground.input.text, ">q  !");
    app.handle_key(key(KeyCode::Down));
    app.handle_key(key(KeyCode::Down));
    assert_eq!(app.playground.input.text, "draft");
    app.update_event(Event::Token {
        id,
        text: " out".into(),
        prob: 0.9,
        alts: None,
    });
    assert!(text(&render(&app, 200, 60)).contains("> >q  !"));
    app.handle_key(key(KeyCode::Esc));
    assert!(!app.editing());
    assert_eq!(app.handle_key(ch(' ')), vec![Effect::Send(Command::Pause)]);
}

#[test]
fn slash_commands_change_settings() {
    let mut app = busy_app();
    app.handle_key(ch('4'));
    app.handle_key(key(KeyCode::Enter));
    for cmd in ["/temp 0.5", "/top_k 5", "/top_p 0.9", "/max 64", "/seed 7"] {
        type_str(&mut app, cmd);
        assert!(
            app.handle_key(key(KeyCode::Enter)).is_empty(),
            "{cmd} sends nothing"
        );
    }
    let s = app.playground.settings;
    assert_eq!(
        (s.temperature, s.top_k, s.top_p, s.max_new_tokens, s.seed),
        (0.5, 5, 0.9, 64, 7)
    );
    let screen = text(&render(&app, 200, 60));
    assert!(
        screen.contains("temp 0.5 · top_k 5 · top_p 0.9 · max 64 · seed 7"),
        "{screen}"
    );
    type_str(&mut app, "/temp -1");
    app.handle_key(key(KeyCode::Enter));
    assert_eq!(app.playground.settings.temperature, 0.5);
    type_str(&mut app, "/bogus");
    app.handle_key(key(KeyCode::Enter));
    assert!(text(&render(&app, 200, 60)).contains("unknown command /bogus"));
    type_str(&mut app, "/help");
    app.handle_key(key(KeyCode::Enter));
    type_str(&mut app, "/clear");
    app.handle_key(key(KeyCode::Enter));
    assert!(app.playground.transcript.is_empty());
}

#[test]
fn search_filters_records_and_probe_uses_the_selection() {
    let mut app = busy_app();
    app.handle_key(ch('/'));
    type_str(&mut app, "BETA");
    assert_eq!(app.browser.visible, vec![1]);
    app.handle_key(key(KeyCode::Enter));
    assert!(!app.searching());
    assert_eq!(
        app.selected_record().map(|r| r.title.as_str()),
        Some("beta.txt")
    );
    app.handle_key(ch('p'));
    let effects = app.handle_key(ch('p'));
    assert_eq!(
        effects,
        vec![Effect::Send(Command::Probe {
            text: Some("abcabcabc induction heads copy".into())
        })]
    );
    app.handle_key(ch('/'));
    app.handle_key(key(KeyCode::Esc));
    assert_eq!(app.browser.visible.len(), app.dataset.records.len());
    app.handle_key(key(KeyCode::Down));
    app.handle_key(key(KeyCode::Down));
    assert_eq!(app.browser.selected, 3);
}

#[test]
fn mouse_click_focuses_and_selects() {
    let mut app = busy_app();
    let area = Rect::new(0, 0, 200, 60);
    click(&mut app, area, 150, 45);
    assert_eq!(app.focus, Pane::Playground);
    // Third row of the record list (inside the border).
    click(&mut app, area, 3, 3);
    assert_eq!(app.focus, Pane::Browser);
    assert_eq!(app.browser.selected, 2);
}

#[test]
fn loss_view_toggles() {
    let mut app = busy_app();
    app.handle_key(ch('2'));
    app.handle_key(ch('g'));
    app.handle_key(ch('w'));
    app.handle_key(ch('m'));
    assert!(app.loss.log_scale && app.loss.recent && !app.loss.smooth);
    app.handle_key(ch('+'));
    assert!(app.loss.smooth && app.loss.strength > 0.6);
    let s = text(&render(&app, 200, 60));
    assert!(s.contains("log"), "{s}");
}

#[test]
fn help_overlay_lists_keys() {
    let mut app = busy_app();
    app.handle_key(ch('?'));
    let s = text(&render(&app, 200, 60));
    assert!(s.contains("pause / resume training"), "{s}");
    app.handle_key(ch('x'));
    assert!(!app.help_open());
}

#[test]
fn keymap_from_config() {
    let mut keys = BTreeMap::new();
    keys.insert("pause".to_string(), "p".to_string());
    keys.insert("help".to_string(), "F2".to_string());
    keys.insert("quit".to_string(), "ctrl-q".to_string());
    let km = KeyMap::from_config(&keys).expect("valid keys");
    assert_eq!(km.action(&ch('p')), Some(Action::Pause));
    assert_eq!(km.action(&ch(' ')), None);
    assert_eq!(km.action(&key(KeyCode::F(2))), Some(Action::Help));
    assert_eq!(
        km.action(&KeyEvent::new(KeyCode::Char('q'), KeyModifiers::CONTROL)),
        Some(Action::Quit)
    );
    let mut bad = BTreeMap::new();
    bad.insert("fly".to_string(), "x".to_string());
    let e = KeyMap::from_config(&bad).expect_err("unknown action");
    assert_eq!(e, KeyMapError::UnknownAction("fly".into()));
    assert!(!e.to_string().contains('\n'));
    let mut bad = BTreeMap::new();
    bad.insert("pause".to_string(), "ctrl-banana".to_string());
    let e = KeyMap::from_config(&bad).expect_err("bad key");
    assert!(e.to_string().contains("ui.keys.pause"), "{e}");
}
