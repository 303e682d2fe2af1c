#!/usr/bin/env python3
"""vix-sim scaling benchmark: wall time, applications per second and peak
memory per node for several node counts, 10,000 client operations in total;
and the wire (issue 18): bytes sent and duplicate deliveries per useful
application, and the share of the bytes that is not runs, against N.

  simulations/bench.py VIX_SIM [--nodes 10,100,1000] [--out DIR] [-- vix-sim options instead of the default]
  simulations/bench.py DIR/bench.json --out DIR      (table and plot again from saved results)

Default options: a burst on a healthy network (--op-gap 0, faults off): every
client op is written at t=0 and the mesh then replicates them.

One process per size (peak RSS is per process). Writes DIR/bench.json (every
summary), DIR/bench.md (the table) and DIR/scaling.svg (the plot; no library
needed). Python standard library only.
"""
import json
import math
import os
import subprocess
import sys

BURST = ["--op-gap", "0", "--drop", "0", "--dup", "0", "--reorder", "0", "--partitions", "0", "--asym", "0",
         "--flap", "0", "--crashes", "0"]


def run(sim, n, extra):
    argv = [sim, "--nodes", str(n), "--ops", "10000", "--seed", "1", "--json"] + extra
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    j = json.loads(p.stdout)
    j["command"] = " ".join(["vix-sim"] + argv[1:])
    print("%5d nodes: %s, %.1f s, %.0f applications/s, %d KiB per node, %.0f bytes and %.3f duplicates per useful" %
          (n, "ok" if j["ok"] else "FAIL", j["wall_s"], j["applications_per_s"], j["peak_rss_per_node_kib"],
           j.get("wire", {}).get("bytes_per_useful", 0.0), j.get("wire", {}).get("duplicates_per_useful", 0.0)),
          flush=True)
    return j


def plot(rows, path):
    """Log-log against nodes: wall time, applications/s, memory per node; then
    bytes per useful application, duplicates per useful, metadata share."""
    w, h, x0, pw, ph = 960, 280, 60, 220, 220
    y0 = 20
    ns = [r["nodes"] for r in rows]
    lo, hi = math.log10(min(ns)), math.log10(max(ns))
    hi = hi if hi > lo else lo + 1

    def px(n, left):
        return left + (math.log10(n) - lo) / (hi - lo) * pw

    def panel(left, title, key, color, unit, top=20):
        nonlocal y0
        y0 = top
        vals = [max(r[key], 1e-9) for r in rows]
        vlo, vhi = math.floor(math.log10(min(vals))), math.ceil(math.log10(max(vals)))
        vhi = vhi if vhi > vlo else vlo + 1

        def py(v):
            return y0 + ph - (math.log10(v) - vlo) / (vhi - vlo) * ph
        out = ['<text x="%d" y="%d" font-weight="bold">%s</text>' % (left, y0 - 8, title),
               '<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#333"/>' % (left, y0, pw, ph)]
        for e in range(vlo, vhi + 1):
            out.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" '
                       'text-anchor="end">%s</text>' % (left, left + pw, py(10 ** e), py(10 ** e), left - 4,
                                                         py(10 ** e) + 4, "%g%s" % (10 ** e, unit)))
        for n in ns:
            out.append('<text x="%.1f" y="%d" text-anchor="middle">%d</text>' % (px(n, left), y0 + ph + 15, n))
        out.append('<text x="%d" y="%d" text-anchor="middle">nodes</text>' % (left + pw // 2, y0 + ph + 30))
        pts = " ".join("%.1f,%.1f" % (px(r["nodes"], left), py(max(r[key], 1e-9))) for r in rows)
        out.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>' % (color, pts))
        for r in rows:
            out.append('<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s</title></circle>' %
                       (px(r["nodes"], left), py(max(r[key], 1e-9)), color, r[key]))
        return out
    for r in rows:
        r["rss_mib"] = r["peak_rss_per_node_kib"] / 1024.0
        wire = r.get("wire", {})  # results saved before issue 18 have none
        r["bytes_per_useful"] = wire.get("bytes_per_useful", 0.0)
        r["duplicates_per_useful"] = wire.get("duplicates_per_useful", 0.0)
        r["metadata_share"] = wire.get("metadata_share", 0.0)
    body = panel(x0, "wall time (s)", "wall_s", "#d62728", "") + \
        panel(x0 + pw + 90, "applications / s", "applications_per_s", "#1f77b4", "") + \
        panel(x0 + 2 * (pw + 90), "peak RSS per node (MiB)", "rss_mib", "#2ca02c", "")
    top2 = h + 30
    body += panel(x0, "bytes sent per useful application", "bytes_per_useful", "#9467bd", "", top2) + \
        panel(x0 + pw + 90, "duplicates per useful application", "duplicates_per_useful", "#8c564b", "", top2) + \
        panel(x0 + 2 * (pw + 90), "metadata share of bytes", "metadata_share", "#7f7f7f", "", top2)
    svg = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" '
           'font-size="11">' % (w, 2 * h + 40)] + body + ["</svg>"]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(svg) + "\n")


def main():
    args = sys.argv[1:]
    if not args or args[0].startswith("-"):
        sys.exit(__doc__)
    sim, nodes, out, extra = args[0], [10, 100, 1000], ".", list(BURST)
    i = 1
    while i < len(args):
        if args[i] == "--nodes":
            nodes = [int(x) for x in args[i + 1].split(",")]
            i += 2
        elif args[i] == "--out":
            out = args[i + 1]
            i += 2
        elif args[i] == "--":
            extra = args[i + 1:]
            break
        else:
            sys.exit(__doc__)
    if sim.endswith(".json"):  # re-plot: bench.py DIR/bench.json --out DIR
        rows = json.load(open(sim, encoding="utf-8"))
    else:
        rows = [run(sim, n, extra) for n in nodes]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "bench.json"), "w", encoding="utf-8") as f:
        json.dump(rows, f, indent=1)
    with open(os.path.join(out, "bench.md"), "w", encoding="utf-8") as f:
        f.write("| nodes | wall s | applications | applications/s | peak RSS per node (total) | LMDB per node "
                "| frames | frame bytes | runs verified | bytes per useful | duplicates per useful | metadata share |\n"
                "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
        for r in rows:
            wire = r.get("wire", {})
            f.write("| %d | %.1f | %d | %.0f | %.1f MiB (%.2f GiB) | %.1f MiB | %d | %.2f GB | %d | %.0f | %.3f | %.2f |\n" %
                    (r["nodes"], r["wall_s"], r["applications"], r["applications_per_s"],
                     r["peak_rss_per_node_kib"] / 1024, r["peak_rss_kib"] / 2 ** 20,
                     r["store_used_bytes_per_node"] / 2 ** 20, r["network"]["frames_sent"],
                     r["network"]["bytes_sent"] / 1e9, r["node_counters"]["runs_received"],
                     wire.get("bytes_per_useful", 0.0), wire.get("duplicates_per_useful", 0.0),
                     wire.get("metadata_share", 0.0)))
    plot(rows, os.path.join(out, "scaling.svg"))
    print("wrote %s/bench.json, bench.md, scaling.svg" % out)


if __name__ == "__main__":
    main()
