#!/usr/bin/env python3
"""bench_disk: does a store's size stay bounded under a long stream of
overwrites? (issue 17, "Disk stays bounded"; by hand, not in CI)

    python3 tests/bench_disk.py PATH_TO_VIX_NODE [OPS [KEYS [SVG]]]   (default 1000000 over 1000)

A 3-member managed mesh of real daemons on 127.0.0.1 (node a creates it, b
and c join), OPS writes over KEYS keys spread over the three (60% puts of
16-64 bytes, 20% dels, 20% incrs) imported in rounds of 20,000 while the
daemons run, twice in the same run: with `run --compact-every 5s` and with
compaction off. After each round: every store's used_bytes (pages in use)
and log length. The baseline, measured in the same run: a store holding the
same live state written once (`import` of the final state into a fresh
directory). Prints `name: value unit` lines and `ratio` lines; the size
series as CSV lines `series,MODE,ROUND,OPS,NODE,USED_BYTES` for a plot.
"""
import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "e2e"))
import meshlib as ml  # noqa: E402
from meshlib import vn_ok  # noqa: E402

ROUND = 20000


def members_mesh(m, extra):
    a = os.path.join(m.root, "a")
    vn_ok("init", "--data", a, "--new-mesh")
    dirs = [a]
    # Short invites: finality keeps a member's chain uncompacted while the
    # invite that admitted it is open (24 h by default; docs/storage.md,
    # "Membership finality"), which a run of minutes would never see end.
    for name in ("b", "c"):
        d = os.path.join(m.root, name)
        vn_ok("join", "--data", d, vn_ok("invite", "--data", a, "--expires", "10s").strip())
        dirs.append(d)
    da = m.start(a, extra=extra)
    for d in dirs[1:]:
        m.start(d, peers=[da.port], extra=extra)
    return dirs


def used(d):
    return ml.status(d)["store"]["used_bytes"]


def log_len(d):
    return sum(1 for line in vn_ok("log", "--data", d, "--json").splitlines() if line.strip())


def one_run(mode, ops, keys, series):
    m = ml.Mesh("disk-" + mode)
    try:
        extra = ("--compact-every", "5s") if mode == "on" else ("--compact-every", "off")  # on by default since session 11
        dirs = members_mesh(m, extra)
        rng = random.Random(7)
        done = 0
        rnd = 0
        t0 = time.monotonic()
        while done < ops:
            n = min(ROUND, ops - done)
            for i, d in enumerate(dirs):
                lines = []
                for _ in range(n // 3 + (1 if i < n % 3 else 0)):
                    k = "key%05d" % rng.randrange(keys)
                    p = rng.random()
                    if p < 0.6:
                        lines.append(json.dumps({"kind": "put", "target": k, "value": "v" * rng.randint(16, 64)}))
                    elif p < 0.8:
                        lines.append(json.dumps({"kind": "del", "target": k}))
                    else:
                        lines.append(json.dumps({"kind": "incr", "target": k, "value": rng.randint(-50, 50)}))
                if lines:
                    vn_ok("import", "--data", d, stdin="\n".join(lines) + "\n", timeout=600)
            done += n
            rnd += 1
            ml.wait_converged(dirs, timeout_s=600)
            for i, d in enumerate(dirs):
                series.append((mode, rnd, done, "abc"[i], used(d)))
        # settle: acks in, one more compaction interval
        time.sleep(12 if mode == "on" else 1)
        ml.wait_converged(dirs, timeout_s=600)
        wall = time.monotonic() - t0
        final = [used(d) for d in dirs]
        logs = [log_len(d) for d in dirs]
        state = ml.dump(dirs[0])
        return final, logs, state, wall, series
    finally:
        m.close()


def baseline(state):
    m = ml.Mesh("disk-base")
    try:
        d = m.init("base")
        lines = []
        for e in state:
            if e.get("kind") == "counter":
                lines.append(json.dumps({"kind": "incr", "target": e["target"], "value": int(e["value"])}))
            elif e.get("kind") == "put":
                lines.append(json.dumps({"kind": "put", "target": e["target"], "value": e["value"]}))
        if lines:
            vn_ok("import", "--data", d, stdin="\n".join(lines) + "\n", timeout=600)
        return used(d), len(lines)
    finally:
        m.close()


def svg(series, path, ops):
    """The size series of node a, both runs, as an SVG plot (docs/bench_disk.svg)."""
    pts = {m: [(o, u) for (mode, _, o, node, u) in series if mode == m and node == "a"] for m in ("on", "off")}
    top = max([u for v in pts.values() for _, u in v] + [1])
    mib = 1048576.0
    step = 50 if top / mib > 100 else 5
    ymax = (int(top / mib / step) + 1) * step
    w, h, x0, x1, y0, y1 = 720, 400, 70, 700, 350, 40
    X = lambda o: x0 + (x1 - x0) * o / max(ops, 1)
    Y = lambda u: y0 - (y0 - y1) * (u / mib) / ymax
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">' % (w, h),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="70" y="18" font-size="14">bench_disk: store used_bytes of node a, 3-member managed mesh, '
           '%s ops over the keys</text>' % format(ops, ",")]
    for k in range(0, ymax + 1, step):
        out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>' % (x0, Y(k * mib), x1, Y(k * mib)))
        out.append('<text x="%d" y="%.1f" text-anchor="end">%d MiB</text>' % (x0 - 6, Y(k * mib) + 4, k))
    for k in range(6):
        o = ops * k / 5
        out.append('<text x="%.1f" y="368" text-anchor="middle">%dk</text>' % (X(o), o / 1000))
    out.append('<text x="385" y="388" text-anchor="middle">operations written</text>')
    for m, colour in (("off", "#c33"), ("on", "#36c")):
        if pts[m]:
            d = " ".join("%.1f,%.1f" % (X(o), Y(u)) for o, u in [(0, 0)] + pts[m])
            out.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>' % (colour, d))
    out.append('<text x="80" y="60" fill="#c33">compaction off</text>')
    out.append('<text x="80" y="76" fill="#36c">run --compact-every 5s</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    """bench_disk.py VIX_NODE [OPS [KEYS [SVG]]]"""
    ml.VN = os.path.abspath(sys.argv[1])
    ops = int(sys.argv[2]) if len(sys.argv) > 2 else 1000000
    keys = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    series = []
    on_final, on_logs, state, on_wall, _ = one_run("on", ops, keys, series)
    off_final, off_logs, _, off_wall, _ = one_run("off", ops, keys, series)
    base, live = baseline(state)
    print("ops: %d\nkeys: %d\nlive_targets: %d" % (ops, keys, live))
    print("baseline_used: %d bytes (the live state written once)" % base)
    for name, final, logs, wall in (("on", on_final, on_logs, on_wall), ("off", off_final, off_logs, off_wall)):
        for i, u in enumerate(final):
            print("compact_%s_used_%s: %d bytes (log %d records)" % (name, "abc"[i], u, logs[i]))
        print("compact_%s_wall: %.1f s" % (name, wall))
    worst_on = max(on_final)
    print("ratio store with compaction / (3x baseline + 8 MiB): %.4f" % (worst_on / (3 * base + 8 * 1048576)))
    print("ratio store with compaction / without: %.4f" % (worst_on / max(off_final)))
    for s in series:
        print("series,%s,%d,%d,%s,%d" % s)
    if len(sys.argv) > 4:
        svg(series, sys.argv[4], ops)


if __name__ == "__main__":
    main()
