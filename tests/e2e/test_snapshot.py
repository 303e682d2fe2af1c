"""End-to-end: vix-node snapshot and restore with real daemons on 127.0.0.1.

    python3 test_snapshot.py PATH_TO_VIX_NODE [TEST...]

A new device restored from one file holds the mesh's state without its
history (its log is empty), then syncs from there; a changed byte, a
directory that is not fresh, a running daemon are refused with nothing
changed. Every wait is bounded; timing only acts as a generous timeout.
"""

import json
import os
import time

import meshlib as ml
from meshlib import check, vn, vn_ok

INVITE_S = 10  # bounded_store_check: how long b's invite lasts


def log_lines(d):
    return [line for line in vn_ok("log", "--data", d, "--json").splitlines() if line.strip()]


def import_ops(d, n, keys):
    lines = []
    for i in range(n):
        k = "k%d" % (i % keys)
        if i % 7 == 3:
            lines.append(json.dumps({"kind": "incr", "target": "n%d" % (i % 3), "value": 1}))
        elif i % 11 == 5:
            lines.append(json.dumps({"kind": "del", "target": k}))
        else:
            lines.append(json.dumps({"kind": "put", "target": k, "value": "v%d" % i}))
    out = vn_ok("import", "--data", d, stdin="\n".join(lines) + "\n")
    check(out.strip() == str(n), "import counts %d: %r" % (n, out))


def test_open_mesh_restore(m):
    """a and b run and write; a's snapshot seeds c, which syncs on from it."""
    a, b = m.init("a"), m.init("b")
    import_ops(a, 3000, 50)
    import_ops(b, 2000, 50)
    da = m.start(a)
    m.start(b, peers=[da.port])
    ml.wait_converged([a, b])
    snap = os.path.join(m.root, "a.snap")
    info = json.loads(vn_ok("snapshot", "--data", a, "--out", snap, "--json"))
    check(info["snapshot"] and info["bytes"] == os.path.getsize(snap), "snapshot --json names its size: %r" % info)
    check(info["origins"] == 2 and info["targets"] >= 50, "the snapshot holds both chains' state: %r" % info)
    check(oct(os.stat(snap).st_mode & 0o777) == "0o600", "the snapshot file is private")
    key = os.path.join(a, "mesh.key")
    c = m.init("c", key=key)
    # A changed byte: refused (exit 2), nothing installed.
    bad = os.path.join(m.root, "bad.snap")
    data = bytearray(open(snap, "rb").read())
    data[len(data) // 2] ^= 0x40
    open(bad, "wb").write(bytes(data))
    before = ml.fingerprint(c)
    rc, out, err = vn("restore", "--data", c, bad)
    check(rc == 2 and "nothing installed" in err, "a changed byte is refused: %d %r" % (rc, err))
    check(ml.fingerprint(c) == before, "nothing changed by the refused restore")
    rc, out, err = vn("restore", "--data", c, snap[:-5] + ".none")
    check(rc == 2, "a missing file is a usage error: %d %r" % (rc, err))
    got = json.loads(vn_ok("restore", "--data", c, snap, "--json"))
    check(got["state_hash"] == info["state_hash"], "restore reports the snapshot's state")
    check(ml.status(c)["state_hash"] == ml.status(a)["state_hash"], "c holds a's state")
    check(len(log_lines(c)) == 0, "c holds no history: its log is empty")
    # Not fresh any more: refused (exit 1), nothing changed.
    before = ml.fingerprint(c)
    rc, _, err = vn("restore", "--data", c, snap)
    check(rc == 1 and "fresh" in err, "a second restore is refused: %d %r" % (rc, err))
    check(ml.fingerprint(c) == before, "nothing changed by the second restore")
    # c runs: later writes of a and b reach it, and its own reach them.
    dc = m.start(c, peers=[da.port])
    vn_ok("put", "--data", a, "after", "from a")
    vn_ok("put", "--data", c, "mine", "from c")
    vn_ok("incr", "--data", b, "n0", "5")
    ml.wait_converged([a, b, c])
    check(len(log_lines(c)) == 3, "c's log: only what came after the snapshot (%d)" % len(log_lines(c)))
    # A running daemon: restore refused (it takes the store's owner lock).
    d2 = m.init("d", key=key)
    dd = m.start(d2, peers=[da.port])
    rc, _, err = vn("restore", "--data", d2, snap)
    check(rc != 0, "restore beside a running daemon is refused: %d %r" % (rc, err))
    dd.stop()
    dc.stop()


def test_managed_mesh_restore(m):
    """A managed mesh: a device that joined restores an admin's snapshot
    (its admission intact, the members as the admin sees them) and syncs."""
    a = os.path.join(m.root, "a")
    vn_ok("init", "--data", a, "--new-mesh")
    import_ops(a, 1500, 40)
    tok = vn_ok("invite", "--data", a).strip()
    j = os.path.join(m.root, "j")
    vn_ok("join", "--data", j, tok)
    snap = os.path.join(m.root, "a.snap")
    # A managed mesh's snapshot holds what compaction folded: nothing yet
    # (an invite is pending, and j's acknowledgement is not in): no chain
    # anchored, no entry; the membership ops travel past their anchors
    # (AHEAD, snapshot version 3) and show a as a member.
    info = json.loads(vn_ok("snapshot", "--data", a, "--out", snap, "--json"))
    check(info["origins"] == 0 and info["targets"] == 0 and info["mesh_ops"] >= 2,
          "nothing stable yet, the membership ops ahead: %r" % info)
    os.remove(snap)
    da = m.start(a)
    dj = m.start(j, peers=[da.port])
    ml.wait_converged([a, j])
    ml.wait_until(lambda: all((stable(d) or {}).get("stable_ops", 0) >= 1503 and stable(d)["stable_behind"] == 0
                              for d in (a, j)), 60, "both members' acks to cover everything")
    r = json.loads(vn_ok("compact", "--data", a, "--json"))
    check(r["log_folded"] > 1000, "a folded its log: %r" % r)
    # k joins now: seeded from a's snapshot.
    k = os.path.join(m.root, "k")
    vn_ok("join", "--data", k, vn_ok("invite", "--data", a).strip())
    j = k
    info = json.loads(vn_ok("snapshot", "--data", a, "--out", snap, "--json"))
    # j's chain is not folded (its invite can still admit another device
    # until it expires: its admission is not final), so its admit reaches
    # k by anti-entropy; the genesis and the invite travel in the snapshot.
    check(info["mesh_ops"] >= 2, "genesis and invites travel with their signatures: %r" % info)
    got = json.loads(vn_ok("restore", "--data", j, snap, "--json"))
    check(got["targets"] == info["targets"], "restored every target")
    m.start(j, peers=[da.port])
    vn_ok("put", "--data", j, "from-k", "1")
    vn_ok("put", "--data", a, "from-a", "2")
    ml.wait_converged([a, j])
    members = json.loads(vn_ok("members", "--data", j, "--json"))
    check(len(members["members"]) == 3, "k sees a, the first joiner and itself as members: %r" % members)
    check(len(log_lines(j)) < 20, "k's log: membership ops, its own, what came after (%d)" % len(log_lines(j)))
    # x joined but holds nothing of a's chain: its invite is not in its
    # view, it is no member there: refused, no file.
    x = os.path.join(m.root, "x")
    vn_ok("join", "--data", x, vn_ok("invite", "--data", a).strip())
    xsnap = os.path.join(m.root, "x.snap")
    rc, _, err = vn("snapshot", "--data", x, "--out", xsnap, "--json")
    check(rc == 1 and "not a member" in err and not os.path.exists(xsnap), "no member in its own view: %d %s" % (rc, err.strip()))


def stable(d):
    live = ml.status(d)["daemon"]
    return live["stable"] if live is not None else None


def test_bounded_store_check(m):
    """Issue 17's check anyone can run: a 2-member managed mesh takes
    200,000 overwrites of 100 keys by import; once both have acknowledged
    everything, `compact` on both leaves each store at most 8 MiB used, its
    log under 10,000 lines and its delivered outbox entries under 10,000;
    a third member that joins afterwards, seeded from a snapshot, reaches
    the same state hash with a log under 10,000 records."""
    a = os.path.join(m.root, "a")
    vn_ok("init", "--data", a, "--new-mesh")
    b = os.path.join(m.root, "b")
    # A short invite: b's ops fold only once no other device can take its
    # invite (expired by the stores' clocks: docs/storage.md, "Membership
    # finality").
    invited = time.time()
    vn_ok("join", "--data", b, vn_ok("invite", "--data", a, "--expires", "%ds" % INVITE_S).strip())
    # The check is of `vix-node compact`: the daemons' own compaction off.
    off = ["--compact-every", "off"]
    da = m.start(a, extra=off)
    m.start(b, peers=[da.port], extra=off)
    for d, tag in ((a, "a"), (b, "b")):
        lines = "\n".join(json.dumps({"kind": "put", "target": "key%03d" % (i % 100), "value": "%s-%d" % (tag, i)})
                          for i in range(100000))
        vn_ok("import", "--data", d, stdin=lines + "\n", timeout=300)
    # Past the expiry, a write on each moves the stores' clocks past it.
    time.sleep(max(0.0, invited + INVITE_S + 1 - time.time()))
    for d in (a, b):
        vn_ok("put", "--data", d, "key000", "tick-" + os.path.basename(d))
    ml.wait_converged([a, b], timeout_s=300)
    # Every member has acknowledged every op: the stable cut is the vector.
    ml.wait_until(lambda: all((stable(d) or {}).get("stable_ops", 0) >= 200000 and stable(d)["stable_behind"] == 0
                              for d in (a, b)), 120, "both members' acks to cover everything")
    for d in (a, b):
        r = json.loads(vn_ok("compact", "--data", d, "--json", timeout=300))
        check(r["members"] == 2 and r["members_acked"] == 2, "both members acknowledged: %r" % r)
        check(r["log_folded"] >= 199000, "the log folded: %r" % r)
        s = ml.status(d)
        used = s["store"]["used_bytes"]
        logn = len(log_lines(d))
        done = sum(k["done"] for k in s["sinks"])
        print("  %s: used_bytes %d (%.2f MiB), log %d lines, done %d, compact %r" %
              (os.path.basename(d), used, used / 1048576.0, logn, done, {k: r[k] for k in ("log_folded", "log_records_dropped", "used_bytes_before", "used_bytes_after")}))
        check(used <= 8 * 1048576, "%s: used_bytes %d over 8 MiB" % (d, used))
        check(logn < 10000, "%s: log --json has %d lines" % (d, logn))
        check(done < 10000, "%s: sinks' done sum to %d" % (d, done))
    # A third member joins afterwards: seeded from a's snapshot, it reaches
    # the same state with almost no log.
    c = os.path.join(m.root, "c")
    vn_ok("join", "--data", c, vn_ok("invite", "--data", a).strip())
    snap = os.path.join(m.root, "a.snap")
    info = json.loads(vn_ok("snapshot", "--data", a, "--out", snap, "--json"))
    check(info["targets"] == 100, "the snapshot holds the 100 live values: %r" % info)
    vn_ok("restore", "--data", c, snap)
    m.start(c, peers=[da.port])
    ml.wait_converged([a, b, c], timeout_s=120)
    logc = len(log_lines(c))
    print("  c: log %d lines, snapshot %d bytes" % (logc, info["bytes"]))
    check(logc < 10000, "c's log has %d records" % logc)
    # The disk space back: a's file keeps its high-water size; its compact
    # copy is about what it uses.
    da.stop()
    r = json.loads(vn_ok("compact", "--data", a, "--copy", os.path.join(m.root, "a-copy"), "--json"))
    print("  a: file_bytes %d, compact copy %d bytes" % (r["file_bytes"], r["copy"]["file_bytes"]))
    check(r["copy"]["file_bytes"] <= 1048576 and r["copy"]["file_bytes"] * 10 < r["file_bytes"],
          "the copy gives the space back: %r" % r)


if __name__ == "__main__":
    ml.main([
        ("open_mesh_restore", test_open_mesh_restore),
        ("managed_mesh_restore", test_managed_mesh_restore),
        ("bounded_store_check", test_bounded_store_check),
    ])
