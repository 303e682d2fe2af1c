"""End-to-end: a device that joins a compacted managed mesh bootstraps
over the network (issue 17: BEHIND, SNAPREQ, SNAPCHUNK; docs/protocol.md
"Snapshots over a session"). No `restore`: the new device's daemon is told
it is behind the members' horizons, asks one of them for a snapshot,
installs it and goes on by anti-entropy from its anchors.

    python3 test_snapwire.py PATH_TO_VIX_NODE [TEST...]

Timing never decides pass or fail: every wait is a generous deadline; the
join time and bytes are printed as figures.
"""

import json
import os
import time

import meshlib as ml
from meshlib import check, vn_ok


def log_lines(d):
    return [line for line in vn_ok("log", "--data", d, "--json").splitlines() if line.strip()]


def stable(d):
    live = ml.status(d)["daemon"]
    return live["stable"] if live is not None else None


def snaps(d):
    """The daemon's snapshot counters, written after now (run.json is
    refreshed on a timer)."""
    u = ml.status(d)["daemon"]["updated_ms"]
    ml.wait_until(lambda: ml.status(d)["daemon"]["updated_ms"] > u, 60, "a fresh status of %s" % d, 0.05)
    return ml.status(d)["daemon"]["snapshots"]


def import_overwrites(d, n, keys, tag):
    lines = "\n".join(json.dumps({"kind": "put", "target": "key%03d" % (i % keys), "value": "%s-%d" % (tag, i)})
                      for i in range(n))
    out = vn_ok("import", "--data", d, stdin=lines + "\n", timeout=300)
    check(out.strip() == str(n), "import counts %d: %r" % (n, out))


INVITE_S = 5  # how long b's invite lasts: its ops fold only once it expired (membership finality)


def two_members(m, extra=()):
    a = os.path.join(m.root, "a")
    vn_ok("init", "--data", a, "--new-mesh")
    b = os.path.join(m.root, "b")
    m.invited = time.time()
    vn_ok("join", "--data", b, vn_ok("invite", "--data", a, "--expires", "%ds" % INVITE_S).strip())
    da = m.start(a, extra=extra)
    db = m.start(b, peers=[da.port], extra=extra)
    return a, b, da, db


def past_invite(m, dirs):
    """Past b's invite's expiry, one write on each store moves its clock past
    it (docs/storage.md, "Membership finality")."""
    time.sleep(max(0.0, m.invited + INVITE_S + 1 - time.time()))
    for d in dirs:
        vn_ok("put", "--data", d, "key000", "tick-" + os.path.basename(d))


def test_join_over_the_network(m):
    """2 members take 40,000 overwrites of 100 keys, acknowledge and
    compact (by themselves and with `compact`); a third member joins with `vix-node join` and `run` only:
    it reaches the same state hash, its log far shorter than the history,
    having received about one snapshot's bytes."""
    a, b, da, db = two_members(m)
    ops = 20000
    import_overwrites(a, ops, 100, "a")
    import_overwrites(b, ops, 100, "b")
    past_invite(m, (a, b))
    ml.wait_converged([a, b], timeout_s=300)
    ml.wait_until(lambda: all((stable(d) or {}).get("stable_ops", 0) >= 2 * ops + 2 and stable(d)["stable_behind"] == 0
                              for d in (a, b)), 120, "both members' acks to cover everything")
    for d in (a, b):
        # The daemons compact by themselves too (default every 60 s and
        # after 10,000 ops): whatever is left, `compact` folds it.
        vn_ok("compact", "--data", d, "--json", timeout=300)
        check(len(log_lines(d)) < 100, "%s's log folded" % d)
    c = os.path.join(m.root, "c")
    vn_ok("join", "--data", c, vn_ok("invite", "--data", a).strip())
    t0 = time.monotonic()
    dc = m.start(c, peers=[da.port])
    ml.wait_converged([a, b, c], timeout_s=120)
    join_s = time.monotonic() - t0
    sc, sa = snaps(c), snaps(a)
    check(sc["installs"] == 1 and sc["install_failed"] == 0, "c installed one snapshot: %r" % sc)
    check(sa["served"] >= 1 and sa["behind_sent"] >= 1, "a told c BEHIND and served it: %r" % sa)
    check("event=snapshot_installed" in dc.text(), "c's daemon logs the install")
    logc = len(log_lines(c))
    check(logc < 100, "c's log has %d records (the history: %d ops)" % (logc, 2 * ops))
    # The snapshot a makes now holds the same state: its size is what c took.
    snap = os.path.join(m.root, "a.snap")
    info = json.loads(vn_ok("snapshot", "--data", a, "--out", snap, "--json"))
    bytes_in = ml.status(c)["daemon"]["stats"]["bytes_in"]
    print("  join: %.2f s; snapshot received %d bytes in %d chunks (snapshot file %d bytes); c bytes_in %d; "
          "c log %d records; history %d ops" % (join_s, sc["bytes_received"], sc["chunks_received"], info["bytes"],
                                               bytes_in, logc, 2 * ops))
    check(sc["bytes_received"] <= 2 * info["bytes"], "bytes received at most 2x the snapshot")
    # Writes go on everywhere, c's included.
    vn_ok("put", "--data", c, "from-c", "1")
    vn_ok("put", "--data", a, "from-a", "2")
    ml.wait_converged([a, b, c], timeout_s=60)


def test_auto_compaction_late_device(m):
    """Compaction on in the daemons (--compact-every 1s): members write,
    acknowledge and compact by themselves; a device that joins late
    catches up over the network, and so does one that joins after it."""
    a, b, da, db = two_members(m, extra=["--compact-every", "1s"])
    import_overwrites(a, 5000, 50, "a")
    import_overwrites(b, 5000, 50, "b")
    past_invite(m, (a, b))
    ml.wait_converged([a, b], timeout_s=120)
    ml.wait_until(lambda: all((stable(d) or {}).get("ops_compacted", 0) >= 9000 for d in (a, b)), 120,
                  "both daemons to compact by themselves")
    for name in ("c", "d"):
        x = os.path.join(m.root, name)
        vn_ok("join", "--data", x, vn_ok("invite", "--data", a).strip())
        m.start(x, peers=[da.port], extra=["--compact-every", "1s"])
        vn_ok("put", "--data", a, "while-" + name, "joins")
        ml.wait_converged([a, b, x], timeout_s=120)
        s = snaps(x)
        check(s["installs"] == 1, "%s bootstrapped from a snapshot: %r" % (name, s))
        check(len(log_lines(x)) < 100, "%s's log is short" % name)
        print("  %s: snapshot %d bytes received" % (name, s["bytes_received"]))


def test_ack_interval(m):
    """run --ack-interval DUR: a member signs an acknowledgement of what it
    holds at most every DUR. With 1h, writes and a sync in the few seconds
    the test lasts leave at most the first ack on each side, so nothing is
    stable and nothing compacts (with the default 1s both sides ack each
    new vector: test_auto_compaction_late_device)."""
    a, b, da, db = two_members(m, extra=["--ack-interval", "1h", "--compact-every", "1s"])
    for i in range(5):
        vn_ok("put", "--data", a, "ka%d" % i, "v")
        vn_ok("put", "--data", b, "kb%d" % i, "v")
    ml.wait_converged([a, b], timeout_s=60)
    u = ml.status(a)["daemon"]["updated_ms"]
    ml.wait_until(lambda: ml.status(a)["daemon"]["updated_ms"] > u, 60, "a fresh status of a", 0.05)
    for d in (a, b):
        s = stable(d)
        check(s["acks_made"] <= 1, "%s made %d acks in an hour's interval" % (d, s["acks_made"]))
        check(s["ops_compacted"] == 0, "%s compacted %d ops without acks" % (d, s["ops_compacted"]))


if __name__ == "__main__":
    ml.main([
        ("join_over_the_network", test_join_over_the_network),
        ("auto_compaction_late_device", test_auto_compaction_late_device),
        ("ack_interval", test_ack_interval),
    ])
