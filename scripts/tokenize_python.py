#!/usr/bin/env python3
"""Tokenization throughput of Python's `tokenizers` package (encode_batch) on
a text file, for comparison with headsup's token cache
(`cargo bench --bench token_cache`), on the same pieces: the file read in
chunks of about 4 MB cut after a newline that a non-space follows, encoded
in batches of 2 x threads chunks, as headsup does.

usage: RAYON_NUM_THREADS=N scripts/tokenize_python.py TOKENIZER.json FILE [--lines N]
With --lines N: batches of N lines each (every line with its newline), the
way a `datasets.map(batched=True)` over a line dataset calls encode_batch,
instead of 4 MB chunks (the package is far slower on multi-megabyte
strings; the token counts then differ slightly at the line cuts).
Prints one JSON line: seconds, MB/s, tokens, peak RSS (MB).
Needs: pip install tokenizers (e.g. in /tmp/torchenv).
"""
import json, os, resource, sys, time

try:
    from tokenizers import Tokenizer
except ImportError:
    sys.exit("error: tokenize_python.py needs the tokenizers package: pip install tokenizers")

CHUNK = 4 << 20


def safe_cut(buf):
    """The last place after a newline that a non-space follows, or None."""
    end = len(buf)
    while True:
        nl = buf.rfind(b"\n", 0, end)
        if nl < 0:
            return None
        nxt = buf[nl + 1 : nl + 5].decode("utf-8", "ignore")[:1]
        if nxt and not nxt.isspace():
            return nl + 1
        end = nl


def chunks(path):
    """Yields (text, bytes) chunks of about CHUNK bytes, cut at safe places."""
    with open(path, "rb") as f:
        buf = b""
        while True:
            more = f.read(CHUNK)
            buf += more
            if not more:
                if buf:
                    yield buf.decode("utf-8"), len(buf)
                return
            cut = safe_cut(buf)
            if cut:
                yield buf[:cut].decode("utf-8"), cut
                buf = buf[cut:]


def line_batches(path, n):
    """Yields (list of n lines, bytes) from the file, each line with its newline."""
    with open(path, "rb") as f:
        batch, size = [], 0
        for line in f:
            batch.append(line.decode("utf-8"))
            size += len(line)
            if len(batch) == n:
                yield batch, size
                batch, size = [], 0
        if batch:
            yield batch, size


def main():
    args = sys.argv[1:]
    lines = None
    if len(args) == 4 and args[2] == "--lines":
        lines = int(args[3])
        args = args[:2]
    if len(args) != 2:
        sys.exit(__doc__.split("\n\n")[1])
    sys.argv[1:] = args
    tok = Tokenizer.from_file(sys.argv[1])
    threads = int(os.environ.get("RAYON_NUM_THREADS", os.cpu_count() or 1))
    group = 2 * threads
    t0 = time.perf_counter()
    n_tokens = n_bytes = 0
    batch = []

    def flush():
        nonlocal n_tokens
        for enc in tok.encode_batch(batch, add_special_tokens=False):
            n_tokens += len(enc.ids)
        batch.clear()

    if lines:
        for b, n in line_batches(sys.argv[2], lines):
            n_bytes += n
            batch.extend(b)
            flush()
    else:
        for c, n in chunks(sys.argv[2]):
            n_bytes += n
            batch.append(c)
            if len(batch) == group:
                flush()
        if batch:
            flush()
    secs = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"impl": "python-tokenizers", "threads": threads, "lines": lines, "seconds": round(secs, 2),
                      "mb_per_s": round(n_bytes / 1e6 / secs, 2), "tokens": n_tokens,
                      "peak_rss_mb": round(rss)}))


if __name__ == "__main__":
    main()
