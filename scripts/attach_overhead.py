#!/usr/bin/env python3
"""Training throughput of a headless `headsup train` with 0, 1 and 3 viewers
attached to its socket, and with one viewer that stops reading, alternated
round by round; and the bytes per second a viewer receives over the socket.

Viewers here are raw socket clients (hello, then read everything, counting
bytes), which costs the trainer what a workbench costs it: the server's side
is the same. Run from the repository root after `cargo build --release`:

    python3 scripts/attach_overhead.py [ROUNDS]
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

BIN = os.environ.get("BIN", "target/release/headsup")
ITERS = 800
SETS = [
    "--set", f"train.max_iters={ITERS}",
    "--set", "train.threads=1",
    "--set", "train.checkpoint_interval=0",
    "--set", "train.log_interval=10",
]


def viewer(path, counts, i, stalled, stop):
    s = socket.socket(socket.AF_UNIX)
    for _ in range(200):
        try:
            s.connect(path)
            break
        except OSError:
            time.sleep(0.02)
    s.sendall(b'{"type":"hello","protocol":1,"client":"bench"}\n')
    if stalled:
        # Reads the welcome, then nothing more.
        s.recv(1 << 20)
        stop.wait()
        s.close()
        return
    s.settimeout(0.5)
    start = time.time()
    while not stop.is_set():
        try:
            b = s.recv(1 << 16)
        except socket.timeout:
            continue
        if not b:
            break
        counts[i] += len(b)
    counts[i] = (counts[i], time.time() - start)
    s.close()


def tok_per_sec(run):
    rows = [json.loads(l) for l in open(os.path.join(run, "metrics.jsonl")) if l.strip()]
    st = [r for r in rows if r.get("event") == "step"]
    return 16 * 64 * ITERS / st[-1]["elapsed_secs"]


def one(n, stalled=False):
    d = tempfile.mkdtemp(prefix="hs-ov-")
    run = os.path.join(d, "r")
    p = subprocess.Popen([BIN, "train", "--out", run] + SETS, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sock = os.path.join(run, "headsup.sock")
    while not os.path.exists(sock):
        time.sleep(0.01)
    counts = [0] * n
    stop = threading.Event()
    ts = [threading.Thread(target=viewer, args=(sock, counts, i, stalled, stop)) for i in range(n)]
    for t in ts:
        t.start()
    p.wait()
    stop.set()
    for t in ts:
        t.join()
    tps = tok_per_sec(run)
    shutil.rmtree(d)
    rates = [c[0] / c[1] for c in counts if isinstance(c, tuple) and c[1] > 0]
    return tps, rates


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    res = {}
    for r in range(rounds):
        for label, n, stalled in [("0 viewers", 0, False), ("1 viewer", 1, False), ("3 viewers", 3, False), ("1 stalled viewer", 1, True)]:
            tps, rates = one(n, stalled)
            res.setdefault(label, []).append(tps)
            extra = f", socket {sum(rates) / len(rates) / 1e3:.1f} kB/s per viewer" if rates else ""
            print(f"round {r + 1} {label}: {tps:.0f} tok/s{extra}", flush=True)
    base = sorted(res["0 viewers"])[len(res["0 viewers"]) // 2]
    for label, v in res.items():
        m = sorted(v)[len(v) // 2]
        print(f"{label}: median {m:.0f} tok/s ({m / base * 100:.1f} % of no viewer), runs {', '.join(f'{x:.0f}' for x in v)}")


if __name__ == "__main__":
    main()
