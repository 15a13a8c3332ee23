//! Attaching to a long run: a server holding a run with 100 000 logged steps
//! (an eval every 100, an attention map of the copy sample's size: 2 layers,
//! 4 heads, 64 tokens), then `attach` timed from connect to the snapshot
//! turned into workbench events. Prints the welcome's size, the number of
//! history points sent (downsampled, not replayed) and the attach times.
//!
//! `cargo bench --bench attach [-- ROUNDS]` (default 5 rounds).

use headsup::serve::run::RunSnapshot;
use headsup::serve::{ServeOptions, Server};
use headsup::train::{AttentionMap, Command, EvalStats, Event, RunInfo, StepStats};
use std::time::{Duration, Instant};

fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5);
    let dir = std::env::temp_dir().join(format!("headsup-attach-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (tx, _rx) = std::sync::mpsc::channel::<Command>();
    let server: Server<Event> = Server::bind(
        &dir,
        RunSnapshot::default(),
        tx,
        |_: &str| {},
        ServeOptions::default(),
    )
    .expect("binding the socket");
    let steps = 100_000usize;
    server.publish(Event::Started(RunInfo {
        name: "bench".into(),
        run_dir: dir.clone(),
        device: "cpu".into(),
        max_iters: steps,
        start_step: 0,
        n_params: 105_152,
        n_layer: 2,
        n_head: 4,
        n_embd: 64,
        block_size: 64,
        vocab_size: 15,
        tokens_per_step: 1024,
        masked_lm: false,
    }));
    let t0 = Instant::now();
    for s in 1..=steps {
        server.publish(Event::Step(StepStats {
            step: s,
            loss: 3.0 / (s as f32).sqrt(),
            lr: 3e-3,
            grad_norm: 0.5,
            tokens_per_sec: 30_000.0,
            eta_secs: 10.0,
            elapsed_secs: s as f64 * 0.03,
        }));
        if s % 100 == 0 {
            server.publish(Event::Eval(EvalStats {
                step: s,
                train_loss: 1.0,
                val_loss: 1.1,
                best_val_loss: 1.1,
                masked: None,
            }));
        }
    }
    let n = 64;
    server.publish(Event::Attention(AttentionMap {
        step: steps,
        tokens: (0..n)
            .map(|i| ((b'a' + (i % 12) as u8) as char).to_string())
            .collect(),
        n_layer: 2,
        n_head: 4,
        probs: vec![vec![vec![1.0 / n as f32; n * n]; 4]; 2],
        causal: true,
    }));
    println!(
        "published {steps} steps + {} evals in {:.0} ms (the trainer's side; never blocks)",
        steps / 100,
        t0.elapsed().as_secs_f64() * 1e3
    );
    // Wait until the fan-out has folded everything.
    loop {
        let (_, snap) = headsup::serve::run::attach(&dir).expect("attach");
        if snap.history.logged as usize == steps && snap.attention.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut times = Vec::new();
    let mut events = 0;
    for _ in 0..rounds {
        let t = Instant::now();
        let (h, snap) = headsup::serve::run::attach(&dir).expect("attach");
        // The snapshot's events reach the workbench's channel before attach returns.
        let mut got = 0;
        while h.events.try_recv().is_ok() {
            got += 1;
        }
        times.push(t.elapsed().as_secs_f64() * 1e3);
        events = got;
        let bytes = serde_json::to_vec(&snap).map(|v| v.len()).unwrap_or(0);
        if times.len() == 1 {
            println!(
                "welcome snapshot: {:.0} kB, {} step points (stride {}), {} evals",
                bytes as f64 / 1e3,
                snap.history.steps.len(),
                snap.history.stride,
                snap.history.evals.len()
            );
        }
    }
    times.sort_by(f64::total_cmp);
    println!(
        "attach (connect, welcome, {events} workbench events): median {:.1} ms, best {:.1} ms, worst {:.1} ms over {rounds} rounds",
        times[times.len() / 2],
        times[0],
        times[times.len() - 1]
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
