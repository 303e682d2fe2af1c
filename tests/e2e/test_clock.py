"""End-to-end: a device whose clock is far ahead cannot pin a value (issue 14).

    python3 test_clock.py PATH_TO_VIX_NODE [TEST...]

VIX_NODE_CLOCK_OFFSET_MS (documented as for tests only) shifts the wall
clock a vix-node process uses for HLCs and outbox times, so one real daemon
(and the CLI writing to its directory) runs a day ahead, or at the very end
of the HLC's 48-bit range (hlc near 2^64-1). Its writes are valid, but an
honest node defers them (status --json: daemon.stats.ops_deferred_future;
one `event=clock_skew` log line per origin) until its own clock is within
max drift (1 h) of them: meanwhile its own writes take effect; once its
clock catches up (here: restarted with the same offset) both converge.
Timing only ever acts as a generous timeout.
"""

import json
import os
import re

import meshlib as ml
from meshlib import check, vn

ENV = "VIX_NODE_CLOCK_OFFSET_MS"
DAY_MS = 24 * 3600 * 1000
HLC_WALL_MAX_MS = (1 << 48) - 1  # the offset is clamped there: the clock stays at the end


def env_with(offset):
    e = dict(os.environ)
    e.pop(ENV, None)
    if offset is not None:
        e[ENV] = str(offset)
    return e


def start(m, d, peers=(), offset=None, daemon=None):
    """Start a daemon (or restart `daemon`) with the clock offset in its environment."""
    saved = os.environ.get(ENV)
    os.environ.clear()
    os.environ.update(env_with(offset))
    try:
        return daemon.start() if daemon is not None else m.start(d, peers=peers)
    finally:
        os.environ.pop(ENV, None)
        if saved is not None:
            os.environ[ENV] = saved


def cli(d, offset, *args):
    return vn(args[0], "--data", d, *args[1:], env=env_with(offset))


def cli_ok(d, offset, *args):
    rc, out, err = cli(d, offset, *args)
    check(rc == 0, "vix-node %s on %s: exit %d: %s" % (" ".join(args), d, rc, err.strip()))
    return out


def get(d, target, offset=None):
    rc, out, _ = cli(d, offset, "get", target)
    return out.rstrip("\n") if rc == 0 else None


def deferred(d):
    live = ml.status(d)["daemon"]
    check(live is not None, "no live daemon on %s" % d)
    return live["stats"]["ops_deferred_future"]


def skew_lines(dm, origin):
    return re.findall(r"level=warn event=clock_skew origin=%s ahead_ms=(\d+)" % origin, dm.text())


def held(d, origin):
    return ml.status(d)["vv"].get(origin, 0)


def test_day_ahead_waits_then_converges(m):
    """A runs a day ahead: its write waits on B, B's own writes win on B
    meanwhile; when B's clock catches up both converge, and B's next write
    (after it has seen A's) wins everywhere."""
    a, b = m.init("a"), m.init("b")
    da = start(m, a, offset=DAY_MS)
    db = start(m, b, peers=[da.port])
    a_id = ml.status(a)["node_id"]
    cli_ok(b, None, "put", "k", "b0")
    ml.wait_converged([a, b])
    a_seq = held(b, a_id)
    cli_ok(a, DAY_MS, "put", "k", "ahead")
    check(held(a, a_id) == a_seq + 1, "a holds its own write")
    # B defers it, and keeps deferring it as A offers it again on schedule.
    ml.wait_until(lambda: deferred(b) >= 3, 60, "b to defer a's write (ops_deferred_future)")
    check(held(b, a_id) == a_seq, "b's version vector does not take a's future write")
    check(get(b, "k") == "b0", "a day-ahead write does not win on b")
    lines = skew_lines(db, a_id)
    check(len(lines) == 1, "one clock_skew line for a's origin, got %d" % len(lines))
    ahead = int(lines[0])
    check(DAY_MS - 3600 * 1000 < ahead <= DAY_MS + 60 * 1000, "ahead_ms about a day: %d" % ahead)
    # B's honest write takes effect on B (A keeps its own greater timestamp).
    cli_ok(b, None, "put", "k", "b1")
    check(get(b, "k") == "b1", "b's write takes effect on b")
    ml.wait_until(lambda: held(a, ml.status(b)["node_id"]) >= 2, 60, "a to receive b's write")
    check(get(a, "k", DAY_MS) == "ahead", "on a, a's own later timestamp still wins")
    # B's clock catches up: it applies A's write and both converge.
    db.stop()
    start(m, b, offset=DAY_MS, daemon=db)
    ml.wait_converged([a, b])
    check(get(a, "k") == get(b, "k") == "ahead", "converged on a's write")
    # B has seen it: B's next write is ordered after it, on both.
    cli_ok(b, DAY_MS, "put", "k", "b2")
    ml.wait_until(lambda: get(a, "k") == "b2", 60, "b's write after seeing a's to win on a")
    ml.wait_converged([a, b])
    for dm in (da, db):
        dm.stop()


def test_max_hlc_does_not_pin(m):
    """C's clock sits at the end of the HLC range (hlc near 2^64-1): its
    write never applies on B (nothing is pinned there), B's later puts and
    dels take effect, and B's HLC is not dragged along."""
    b, c = m.init("b"), m.init("c")
    dc = start(m, c, offset=HLC_WALL_MAX_MS)
    db = start(m, b, peers=[dc.port])
    c_id, b_id = ml.status(c)["node_id"], ml.status(b)["node_id"]
    cli_ok(b, None, "put", "k", "b0")
    ml.wait_converged([b, c])
    c_seq = held(b, c_id)
    cli_ok(c, HLC_WALL_MAX_MS, "put", "k", "pinned")
    rc, out, err = vn("log", "--data", c, "--json")
    check(rc == 0, "log on c: %s" % err)
    mine = [e for e in map(json.loads, out.splitlines()) if e["origin"] == c_id]
    check(len(mine) >= 1, "c's log lists its write")
    hlc = mine[-1]["hlc"]
    check(hlc >= (HLC_WALL_MAX_MS << 16), "c's write has an HLC near 2^64-1: %d" % hlc)
    ml.wait_until(lambda: deferred(b) >= 2, 60, "b to defer c's write")
    check(held(b, c_id) == c_seq, "b's version vector does not take c's write")
    check(len(skew_lines(db, c_id)) == 1, "one clock_skew line for c's origin")
    # B's honest writes, a del among them, take effect on B.
    cli_ok(b, None, "put", "k", "b1")
    check(get(b, "k") == "b1", "b's put takes effect")
    cli_ok(b, None, "del", "k")
    check(get(b, "k") is None, "b's del takes effect")
    cli_ok(b, None, "put", "k", "b2")
    check(get(b, "k") == "b2", "b's second put takes effect")
    # B's own HLC stayed with B's clock: its last write is far below c's.
    rc, out, _ = vn("log", "--data", b, "--json")
    b_hlcs = [e["hlc"] for e in map(json.loads, out.splitlines()) if e["origin"] == b_id]
    check(max(b_hlcs) < (1 << 63), "b's HLCs were not dragged toward 2^64: %d" % max(b_hlcs))
    # C receives B's writes (they are in the past for C); it keeps deferring
    # nothing, and B still defers C's write after many offers.
    ml.wait_until(lambda: held(c, b_id) == held(b, b_id), 60, "c to receive b's writes")
    ml.wait_until(lambda: deferred(b) >= 5, 60, "b to keep deferring c's write")
    check(get(b, "k") == "b2" and held(b, c_id) == c_seq, "still nothing pinned on b")
    check(deferred(c) == 0, "c defers nothing")
    for dm in (dc, db):
        dm.stop()


if __name__ == "__main__":
    ml.main([
        ("day_ahead_waits_then_converges", test_day_ahead_waits_then_converges),
        ("max_hlc_does_not_pin", test_max_hlc_does_not_pin),
    ])
