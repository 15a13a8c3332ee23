#!/usr/bin/env python3
"""Bytes per second an idle viewer costs while the copy sample trains: on the
terminal of `headsup attach` at 120x40 (tmux `pipe-pane` counts what the
workbench writes) and over the run's socket (a raw client counting what it
receives), and the same for a paused run. Viewer binaries given in VIEWERS
(space-separated) are alternated round by round, e.g. an older build against
this one. Needs tmux; run from the repository root after
`cargo build --release`:

    python3 scripts/idle_bytes.py [ROUNDS] [SECONDS]
    VIEWERS="/tmp/headsup-before target/release/headsup" python3 scripts/idle_bytes.py 3

PAIRED=1 runs each viewer binary as its own trainer too (an A/B of two
builds where the trainer's side changed as well, e.g. what it sends to
viewers). SIZE=80x24 sets the terminal (default 120x40); COLORS=16 runs the viewer
with TERM=xterm and no COLORTERM (16 colours; default true colour). WARM is
the seconds between attaching and counting (default 12: the workbench shows
progress live for 10 s after the last key, and attaching counts as one;
WARM=4 counts that live start too).
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

TRAIN_BIN = os.environ.get("BIN", "target/release/headsup")
VIEWERS = os.environ.get("VIEWERS", TRAIN_BIN).split()
SETS = [
    "--config", "copy",
    "--set", "train.max_iters=10000000",
    "--set", "train.threads=1",
    "--set", "train.checkpoint_interval=0",
]
TMUX = ["tmux", "-L", "idle-bytes"]
W, H = os.environ.get("SIZE", "120x40").split("x")
TERM_ENV = ("TERM=xterm" if os.environ.get("COLORS") == "16"
            else "TERM=xterm-256color COLORTERM=truecolor")
WARM = float(os.environ.get("WARM", "12"))


def socket_bytes(path, secs, out):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.sendall(b'{"type":"hello","protocol":1,"client":"bytes"}\n')
    s.settimeout(0.2)
    # The welcome (history) is not idle traffic: read it away first.
    end = time.time() + 2
    while time.time() < end:
        try:
            s.recv(1 << 20)
        except socket.timeout:
            pass
    n, start = 0, time.time()
    while time.time() - start < secs:
        try:
            b = s.recv(1 << 16)
        except socket.timeout:
            continue
        if not b:
            break
        n += len(b)
    out.append(n / (time.time() - start))
    s.close()


def one(viewer, secs, pause):
    d = tempfile.mkdtemp(prefix="hs-idle-")
    run = os.path.join(d, "r")
    trainer = viewer if os.environ.get("PAIRED") == "1" else TRAIN_BIN
    p = subprocess.Popen([trainer, "train", "--out", run] + SETS,
                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sock = os.path.join(run, "headsup.sock")
    while not os.path.exists(sock):
        time.sleep(0.05)
    subprocess.run(TMUX + ["kill-server"], stderr=subprocess.DEVNULL)
    subprocess.run(TMUX + ["new-session", "-d", "-s", "v", "-x", W, "-y", H,
                           f"env -u COLORTERM {TERM_ENV} {viewer} attach {run}; sleep 60"], check=True)
    time.sleep(WARM)
    if pause:
        subprocess.run(TMUX + ["send-keys", "-t", "v", "Space"])
        time.sleep(2)
    log = os.path.join(d, "pane.bytes")
    subprocess.run(TMUX + ["pipe-pane", "-o", "-t", "v", f"cat > {log}"], check=True)
    sock_rate = []
    t = threading.Thread(target=socket_bytes, args=(sock, secs, sock_rate))
    t.start()
    time.sleep(secs)
    subprocess.run(TMUX + ["pipe-pane", "-t", "v"])
    t.join()
    term = os.path.getsize(log) / secs if os.path.exists(log) else 0.0
    subprocess.run(TMUX + ["kill-server"], stderr=subprocess.DEVNULL)
    p.terminate()
    p.wait()
    shutil.rmtree(d)
    return term, (sock_rate[0] if sock_rate else 0.0)


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    secs = float(sys.argv[2]) if len(sys.argv) > 2 else 20
    res = {}
    for r in range(rounds):
        for v in VIEWERS:
            for pause in (False, True):
                term, sock = one(v, secs, pause)
                key = (v, "paused" if pause else "training")
                res.setdefault(key, []).append((term, sock))
                print(f"round {r + 1} {v} {key[1]}: terminal {term / 1e3:.2f} kB/s, socket {sock / 1e3:.1f} kB/s", flush=True)
    for (v, what), xs in res.items():
        t = sorted(x[0] for x in xs)[len(xs) // 2]
        s = sorted(x[1] for x in xs)[len(xs) // 2]
        print(f"{v} {what}: median terminal {t / 1e3:.2f} kB/s, socket {s / 1e3:.1f} kB/s over {len(xs)} runs")


if __name__ == "__main__":
    main()
