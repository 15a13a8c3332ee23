//! Tests of a live server and its clients on a real socket, with a toy run
//! (events are numbers, commands strings, the snapshot the count and the
//! last few numbers).

use super::*;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Toy {
    count: u64,
    last: Vec<u64>,
}

impl Snapshot<u64> for Toy {
    fn apply(&mut self, e: &u64) {
        self.count += 1;
        self.last.push(*e);
        if self.last.len() > 4 {
            self.last.remove(0);
        }
    }
}

type Logs = Arc<Mutex<Vec<String>>>;

fn serve(dir: &Path, opts: ServeOptions) -> (Server<u64>, Receiver<String>, Logs) {
    let (tx, rx) = mpsc::channel();
    let logs: Logs = Arc::default();
    let l2 = logs.clone();
    let s = Server::bind(
        dir,
        Toy::default(),
        tx,
        move |m: &str| l2.lock().unwrap().push(m.to_string()),
        opts,
    )
    .unwrap();
    (s, rx, logs)
}

fn attach(dir: &Path) -> Connection<String, u64, Toy> {
    connect(dir, "test", PATIENCE).unwrap()
}

/// Waits (up to 10 s, far above need) for the next event.
/// Generous limits: they only stop a broken test from hanging, and a loaded
/// 2-core CI machine must never trip them.
const PATIENCE: Duration = Duration::from_secs(120);

fn next(c: &Connection<String, u64, Toy>) -> Incoming<u64, Toy> {
    c.incoming.recv_timeout(PATIENCE).unwrap()
}

fn wait_for(mut cond: impl FnMut() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(t.elapsed() < PATIENCE, "condition not met");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A raw connection that has said hello and read its welcome.
fn raw(dir: &Path) -> (UnixStream, BufReader<UnixStream>) {
    let mut s = UnixStream::connect(socket::client_path(dir)).unwrap();
    s.write_all(b"{\"type\":\"hello\",\"protocol\":1,\"client\":\"raw\"}\n")
        .unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with("{\"type\":\"welcome\""), "{line}");
    (s, r)
}

fn read_json(r: &mut BufReader<UnixStream>) -> serde_json::Value {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

#[test]
fn a_new_viewer_gets_the_snapshot_then_every_later_event() {
    let t = tempfile::tempdir().unwrap();
    let (server, _cmds, _) = serve(t.path(), ServeOptions::default());
    for i in 1..=10 {
        server.publish(i);
    }
    // The fan-out folds asynchronously: attach once it has.
    let mut c = attach(t.path());
    while c.snapshot.count < 10 {
        c = attach(t.path());
    }
    assert_eq!(c.snapshot.last, vec![7, 8, 9, 10]);
    server.publish(11);
    assert_eq!(next(&c), Incoming::Event(11));
    // The earlier connections are gone; this one stays.
    wait_for(|| server.clients() == 1);
}

#[test]
fn an_event_can_go_to_the_snapshot_only_or_to_the_viewers_only() {
    let t = tempfile::tempdir().unwrap();
    let (server, _cmds, _) = serve(t.path(), ServeOptions::default());
    let c = attach(t.path());
    wait_for(|| server.clients() == 1);
    // Held back from the viewers (e.g. a paced probe): only the snapshot has it.
    server.publish_as(5, Delivery::SnapshotOnly);
    // Sent later without folding it again.
    server.publish_as(6, Delivery::ViewersOnly);
    server.publish(7);
    assert_eq!(next(&c), Incoming::Event(6));
    assert_eq!(next(&c), Incoming::Event(7));
    let mut late = attach(t.path());
    while late.snapshot.count < 2 {
        late = attach(t.path());
    }
    assert_eq!(late.snapshot.last, vec![5, 7]);
}

#[test]
fn commands_reach_the_producer_and_viewers_see_the_same_events() {
    let t = tempfile::tempdir().unwrap();
    let (server, cmds, _) = serve(t.path(), ServeOptions::default());
    let a = attach(t.path());
    let b = attach(t.path());
    wait_for(|| server.clients() == 2);
    a.commands.send("pause".into()).unwrap();
    assert_eq!(cmds.recv_timeout(PATIENCE).unwrap(), "pause");
    // What the producer does about it reaches both.
    server.publish(42);
    assert_eq!(next(&a), Incoming::Event(42));
    assert_eq!(next(&b), Incoming::Event(42));
    drop(a);
    wait_for(|| server.clients() == 1);
    server.publish(43);
    assert_eq!(next(&b), Incoming::Event(43));
}

#[test]
fn bad_frames_get_error_replies_and_the_connection_goes_on() {
    let t = tempfile::tempdir().unwrap();
    let (server, cmds, logs) = serve(t.path(), ServeOptions::default());
    let (mut s, mut r) = raw(t.path());
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"this is not json\n".to_vec(), "malformed"),
        (b"{\"type\":\"format_disk\"}\n".to_vec(), "unknown"),
        (
            b"{\"type\":\"command\",\"command\":7}\n".to_vec(),
            "malformed",
        ),
        (
            b"{\"type\":\"hello\",\"protocol\":1,\"client\":\"x\"}\n".to_vec(),
            "malformed",
        ),
        (
            {
                let mut v = vec![b'a'; protocol::MAX_CLIENT_FRAME + 10];
                v.push(b'\n');
                v
            },
            "oversized",
        ),
    ];
    for (frame, code) in cases {
        s.write_all(&frame).unwrap();
        let v = read_json(&mut r);
        assert_eq!(v["type"], "error", "{v}");
        assert_eq!(v["code"], code, "{v}");
    }
    s.write_all(b"{\"type\":\"command\",\"command\":\"save\"}\n")
        .unwrap();
    assert_eq!(cmds.recv_timeout(PATIENCE).unwrap(), "save");
    server.publish(5);
    let v = read_json(&mut r);
    assert_eq!(v, serde_json::json!({"type": "event", "event": 5}));
    let logs = logs.lock().unwrap().join("\n");
    assert!(logs.contains("not a JSON object"), "{logs}");
    assert!(logs.contains("limit is 65536"), "{logs}");
}

#[test]
fn handshake_checks_the_protocol_version_and_the_first_message() {
    let t = tempfile::tempdir().unwrap();
    let (_server, _, _) = serve(t.path(), ServeOptions::default());
    let ask = |hello: &[u8]| {
        let mut s = UnixStream::connect(socket::client_path(t.path())).unwrap();
        s.write_all(hello).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        serde_json::from_str::<serde_json::Value>(out.trim()).unwrap()
    };
    let v = ask(b"{\"type\":\"hello\",\"protocol\":99,\"client\":\"future\"}\n");
    assert_eq!(v["code"], "version");
    assert!(v["message"].as_str().unwrap().contains("protocol 1"), "{v}");
    let v = ask(b"{\"type\":\"command\",\"command\":\"stop\"}\n");
    assert_eq!(v["code"], "not_hello");
    let v = ask(b"\x00\x01\x02garbage\n");
    assert_eq!(v["code"], "malformed");
}

#[test]
fn a_viewer_that_stops_reading_never_blocks_the_producer_and_is_resynced_or_dropped() {
    let t = tempfile::tempdir().unwrap();
    let opts = ServeOptions {
        queue: 64,
        // Long enough that the reading viewer, on a loaded machine, is never
        // taken for a stalled one.
        write_timeout: Duration::from_secs(3),
        // The reading viewer may fall behind such a burst too: resync it.
        max_resyncs: 1_000_000,
        ..ServeOptions::default()
    };
    let (server, _, logs) = serve(t.path(), opts);
    // Connected and never reads again.
    let (_stalled, _r) = raw(t.path());
    let live = attach(t.path());
    wait_for(|| server.clients() == 2);
    // Far more than the socket buffer and the queue hold; publish never waits.
    let big = 200_000u64;
    for i in 0..big {
        server.publish(i);
    }
    // The reading viewer sees the end: directly, or through a resync.
    let mut seen_last = false;
    let mut resynced = false;
    while !seen_last {
        match next(&live) {
            Incoming::Event(e) => seen_last = e == big - 1,
            Incoming::Resync { snapshot, .. } => {
                resynced = true;
                seen_last = snapshot.last.last() == Some(&(big - 1));
            }
            other => panic!("{other:?}"),
        }
    }
    // The stalled one is dropped with a log line, and the producer goes on.
    wait_for(|| server.clients() == 1);
    let logs = logs.lock().unwrap().join("\n");
    assert!(
        logs.contains("stopped reading for 3.0 s; dropped"),
        "{logs}"
    );
    server.publish(big);
    loop {
        if let Incoming::Event(e) = next(&live) {
            if e == big {
                break;
            }
        }
    }
    eprintln!("the reading viewer was resynced: {resynced}");
}

#[test]
fn flooded_commands_are_rate_limited() {
    let t = tempfile::tempdir().unwrap();
    let opts = ServeOptions {
        commands_per_sec: 5.0,
        ..ServeOptions::default()
    };
    let (_server, cmds, _) = serve(t.path(), opts);
    let (mut s, mut r) = raw(t.path());
    let mut burst = Vec::new();
    for _ in 0..50 {
        burst.extend_from_slice(b"{\"type\":\"command\",\"command\":\"save\"}\n");
    }
    s.write_all(&burst).unwrap();
    let v = read_json(&mut r);
    assert_eq!(v["code"], "rate_limited", "{v}");
    let mut got = 0;
    while cmds.recv_timeout(Duration::from_secs(2)).is_ok() {
        got += 1;
    }
    assert!((5..50).contains(&got), "{got} commands passed");
}

#[test]
fn the_trainer_going_away_is_reported_to_the_viewer() {
    let t = tempfile::tempdir().unwrap();
    let (server, _, _) = serve(t.path(), ServeOptions::default());
    let c = attach(t.path());
    drop(server);
    match next(&c) {
        Incoming::Closed(reason) => assert!(reason.contains("shutting down"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(!socket::client_path(t.path()).exists());
    let e = connect::<String, u64, Toy>(t.path(), "t", Duration::from_secs(1))
        .err()
        .unwrap();
    assert!(e.0.contains("no trainer is serving it"), "{e}");
}

#[test]
fn a_stale_socket_is_reported_as_a_gone_trainer() {
    let t = tempfile::tempdir().unwrap();
    let p = socket::server_path(t.path()).unwrap();
    drop(socket::bind(&p).unwrap());
    let e = connect::<String, u64, Toy>(t.path(), "t", Duration::from_secs(1))
        .err()
        .unwrap();
    assert!(e.0.contains("its trainer is gone"), "{e}");
    // A new server replaces it.
    let (_server, _, _) = serve(t.path(), ServeOptions::default());
    attach(t.path());
}

/// As root: a client running as `nobody` is refused by the uid check. The
/// socket and its directory are opened up for this test only, so that the
/// connection gets as far as the check.
#[test]
fn a_client_of_another_uid_is_refused() {
    if socket::own_uid() != 0 {
        eprintln!("note: not root, so no other uid to test with; the check itself is unit-tested in socket.rs");
        return;
    }
    let setpriv = ["/usr/bin/setpriv", "/bin/setpriv"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let python = ["/usr/bin/python3", "/usr/local/bin/python3"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let (Some(setpriv), Some(python)) = (setpriv, python) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true: this test needs setpriv and /usr/bin/python3"
        );
        eprintln!("note: setpriv or python3 missing; not run");
        return;
    };
    use std::os::unix::fs::PermissionsExt;
    let t = tempfile::Builder::new().tempdir_in("/tmp").unwrap();
    let (_server, _, logs) = serve(t.path(), ServeOptions::default());
    let sock = socket::client_path(t.path());
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o777)).unwrap();
    let script = "import socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\nprint(s.makefile().readline().strip())";
    let out = std::process::Command::new(setpriv)
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .arg(python)
        .args(["-c", script])
        .arg(&sock)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["code"], "refused", "{v}");
    assert!(v["message"].as_str().unwrap().contains("uid 65534"), "{v}");
    wait_for(|| {
        logs.lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("refused a connection from uid 65534"))
    });
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn frame() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            // Random bytes, with and without newlines.
            proptest::collection::vec(any::<u8>(), 0..300),
            // Valid-looking frames cut anywhere.
            (
                0usize..80,
                prop::sample::select(vec![
                    "{\"type\":\"hello\",\"protocol\":1,\"client\":\"f\"}\n",
                    "{\"type\":\"command\",\"command\":\"pause\"}\n",
                    "{\"type\":\"command\",\"command\":{\"nested\":[1,2,3]}}\n",
                    "{\"type\":\"bye\"}\n",
                    "{\"type\":\"event\",\"event\":1}\n",
                ])
            )
                .prop_map(|(cut, s)| s.as_bytes()[..cut.min(s.len())].to_vec()),
            // Long lines.
            (1usize..200_000).prop_map(|n| vec![b'{'; n]),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
        #[test]
        fn random_and_truncated_frames_never_stop_the_server(
            conns in proptest::collection::vec(proptest::collection::vec(frame(), 1..6), 1..4)
        ) {
            let t = tempfile::tempdir().unwrap();
            let (server, cmds, _) = serve(t.path(), ServeOptions::default());
            let watcher = attach(t.path());
            for frames in &conns {
                let mut s = UnixStream::connect(socket::client_path(t.path())).unwrap();
                s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
                for f in frames {
                    // The server may hang up on a bad handshake: that is fine.
                    if s.write_all(f).is_err() {
                        break;
                    }
                    server.publish(1);
                }
            }
            // The producer and a well-behaved viewer carry on.
            server.publish(7_777);
            loop {
                match next(&watcher) {
                    Incoming::Event(7_777) => break,
                    Incoming::Event(_) | Incoming::Resync { .. } => {}
                    other => panic!("{other:?}"),
                }
            }
            watcher.commands.send("ok".into()).unwrap();
            loop {
                if cmds.recv_timeout(PATIENCE).unwrap() == "ok" {
                    break;
                }
            }
            // Only well-formed commands got through.
            while let Ok(c) = cmds.try_recv() {
                prop_assert_eq!(c, "pause");
            }
        }
    }
}
