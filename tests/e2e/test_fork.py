"""End-to-end, issue 14 item 5: fork evidence between real vix-node daemons
on 127.0.0.1.

    python3 test_fork.py PATH_TO_VIX_NODE [TEST...]

A fork is two signed operations of one origin at one seq. The honest ways to
make one: a copied data directory (two devices with one identity.key) or a
restored backup, each writing after the copy was taken. The verdict, on every
node that hears of it: that origin's operations from the fork's seq on are
void, whichever branch a node held, so acknowledged writes from there on are
lost by design; `status` lists the fork; the forked identity can never write
again (VS_ERR_FORKED, exit 1) and its device makes a new one.

Every wait is bounded; timing only ever acts as a generous timeout.
VN_E2E_KEEP=1 keeps the directories of a failed test.
"""

import os
import shutil
import time

import meshlib as ml
from meshlib import check, vn, vn_ok

EXIT_FORKED = 1  # DESIGN.md exit codes: 1 = invariant failed (VS_ERR_FORKED)
VERDICT_S = 60.0  # generous: detection, bisection with WANTs, then FORK to the neighbours


def get(d, target):
    rc, out, _ = vn("get", "--data", d, target)
    return out.rstrip("\n") if rc == 0 else None


def node_id(d):
    return vn_ok("id", "--data", d).strip()


def copy_dir(src, dst):
    """A second device with the same identity: the data directory copied
    while no process has it open (an LMDB file copy is then consistent)."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("nudge.sock", "run.json"))


def forks(d):
    s = ml.status(d)
    return s["forks"], s["forks_total"]


def lists_fork(d, origin, seq):
    return forks(d) == ([{"origin": origin, "seq": seq}], 1)


def wait_fork(dirs, origin, seq, what):
    """Every dir lists exactly this fork (polled; a wrong verdict fails at the deadline with what was seen)."""
    try:
        ml.wait_until(lambda: all(lists_fork(d, origin, seq) for d in dirs), VERDICT_S, what, 0.2)
    except ml.Failure as e:
        seen = {os.path.basename(d): forks(d) for d in dirs}
        raise ml.Failure("%s; forks listed: %s" % (e, seen))


def check_put_refused(d, tag):
    """The forked identity cannot write: a clear error naming the fork, exit 1, nothing stored."""
    before = ml.status(d)
    rc, out, err = vn("put", "--data", d, "after-verdict-" + tag, "x")
    check(rc == EXIT_FORKED, "put on %s after the verdict: exit %d (want %d), stdout %r, stderr %r" %
          (tag, rc, EXIT_FORKED, out, err))
    check("fork" in err.lower() and "identity" in err.lower(),
          "put on %s: the error names the fork and the identity: %r" % (tag, err))
    check(out == "", "put on %s printed no op id: %r" % (tag, out))
    for args, stdin in ((("del", "p1"), None), (("incr", "n", "1"), None),
                        (("import",), '{"kind": "put", "target": "i", "value": "v"}\n')):
        rc, _, err = vn(args[0], "--data", d, *args[1:], stdin=stdin)
        check(rc == EXIT_FORKED and "fork" in err.lower(), "%s on %s after the verdict: exit %d, %r" %
              (args[0], tag, rc, err))
    after = ml.status(d)
    check((after["seq"], after["lsn"], after["state_hash"]) == (before["seq"], before["lsn"], before["state_hash"]),
          "a refused put on %s changed nothing" % tag)


def check_stats(dirs, after_ms=0):
    for d in dirs:
        st = ml.stats(d, after_ms)
        check(st["fork_evidence_bad"] == 0, "%s: no FORK message failed verification: %s" % (d, st))
        r = st["rejected"]
        check(r["auth"] == 0 and r["malformed"] == 0, "%s: honest peers, nothing forged or malformed: %s" % (d, r))
        # A vector that fell because its sender took the verdict first is
        # explained by the evidence it sends first: no session is closed.
        check(st["rejected_vv_regress"] == 0, "%s: no vector fall went unexplained: %s" % (d, st))


# ---- tests ----

def copied_dir_fork(m, a_writes, a2_writes):
    """A's directory copied to A2 (same identity.key). A writes a_writes
    (target, value) pairs while connected only to B, A2 writes a2_writes
    while connected only to C, so neither side can see the fork; then B and
    C meet. Both reach one verdict (void from the first seq written after
    the copy), tell A and A2, and all four converge. Returns the dirs, a's
    id and the daemons."""
    a, b, c = m.init("a"), m.init("b"), m.init("c")
    aid = node_id(a)
    for key, val in (("shared", "before"), ("p1", "one"), ("p2", "two")):
        vn_ok("put", "--data", a, key, val)  # before the copy: on both devices, never void
    k = ml.status(a)["seq"]
    check(k == 3, "a's own seq before the copy is 3, not %d" % k)
    a2 = os.path.join(m.root, "a2")
    copy_dir(a, a2)
    check(node_id(a2) == aid, "the copy has a's identity")

    db, dc = m.start(b), m.start(c)
    da = m.start(a, peers=[db.port])
    da2 = m.start(a2, peers=[dc.port])
    for key, val in a_writes:
        vn_ok("put", "--data", a, key, val)
    for key, val in a2_writes:
        vn_ok("put", "--data", a2, key, val)
    vn_ok("put", "--data", b, "b-own", "b")
    vn_ok("put", "--data", c, "c-own", "c")
    ml.wait_converged([a, b])
    ml.wait_converged([a2, c])
    check(ml.status(b)["vv"][aid] == k + len(a_writes) and ml.status(c)["vv"][aid] == k + len(a2_writes),
          "b holds a's branch, c holds a2's: neither can tell yet")
    check(get(b, "shared") == "from a" and get(c, "shared") == "from a2", "the copies' values before b and c meet")
    check(forks(b) == ([], 0) and forks(c) == ([], 0), "no fork seen before b and c meet")

    db.stop()  # b again, now dialling c as well; a redials b on its port
    db.peers = [dc.port]
    db.start()
    wait_fork([b, c], aid, k + 1, "b and c to list a's fork at seq %d" % (k + 1))
    ml.wait_converged([b, c])
    void = {key for key, _ in a_writes + a2_writes} - {"shared"}
    for d in (b, c):
        s = ml.status(d)
        check(s["vv"][aid] == k, "%s holds a's chain up to the fork only: vv %d, want %d" % (d, s["vv"][aid], k))
        check(get(d, "shared") == "before" and get(d, "p1") == "one" and get(d, "p2") == "two",
              "%s: a's values from before the copy are there (shared=%r)" % (d, get(d, "shared")))
        for gone in sorted(void):
            check(get(d, gone) is None, "%s: %s, written after the copy, is void" % (d, gone))
        check(get(d, "b-own") == "b" and get(d, "c-own") == "c", "%s: the other origins' writes stay" % d)

    # The verdict travels to the forked devices themselves.
    wait_fork([a, a2], aid, k + 1, "a and a2 to learn the verdict on their own identity")
    ml.wait_converged([a, a2, b, c])
    for d, tag in ((a, "a"), (a2, "a2")):
        check(ml.status(d)["seq"] == k, "%s's own chain is back at seq %d" % (tag, k))
        check(get(d, "shared") == "before", "%s: its own void write is gone from its state" % tag)
        check_put_refused(d, tag)
    daemons = {"a": da, "a2": da2, "b": db, "c": dc}
    for dm in daemons.values():
        check(dm.alive(), "daemon on %s still runs after the verdict" % dm.dir)
    # The daemons' counters as of now: a run.json written before the
    # verdict came may still be the newest (it is written every second).
    now_ms = int(time.time() * 1000)
    check_stats([a, a2, b, c], now_ms)
    for d in (a, a2, b, c):
        v = ml.stats(d, now_ms)["fork_verdicts"]
        check(v == 1, "%s took the verdict once (found or received): %d" % (d, v))
    check("level=warn event=fork origin=%s void_from=%d" % (aid, k + 1) in db.text() + dc.text(),
          "b or c logged the verdict (event=fork)")
    for dm in (da, da2):
        check("level=error event=fork origin=%s void_from=%d" % (aid, k + 1) in dm.text(),
              "%s logged that its own identity is void" % dm.dir)
    return a, a2, b, c, aid, daemons


def test_copied_dir(m):
    """The copies write different numbers of ops after the copy (A three,
    A2 two): their heads differ in seq as well as in hash. Then the owner
    gives the device a new identity, as the README says."""
    a, a2, b, c, aid, dms = copied_dir_fork(m, [("shared", "from a"), ("only-a", "1"), ("only-a-2", "2")],
                                            [("shared", "from a2"), ("only-a2", "1")])
    db = dms["b"]

    # What the owner does (README): a new identity on a new data directory,
    # with the mesh's key. `init` on the old directory keeps the void identity.
    a3 = os.path.join(m.root, "a3")
    a3id = vn_ok("init", "--data", a3, "--mesh-key", os.path.join(a, "mesh.key")).strip()
    check(a3id != aid, "a fresh data directory gets a new identity")
    da3 = m.start(a3, peers=[db.port])
    vn_ok("put", "--data", a3, "shared", "from the new identity")
    ml.wait_until(lambda: get(c, "shared") == "from the new identity", 60, "the new identity's write to reach c")
    ml.wait_converged([a, a2, a3, b, c])
    check(get(a3, "p1") == "one", "the new device holds a's writes from before the fork")
    for dm in [da3] + list(dms.values()):
        dm.stop()
    check(vn_ok("init", "--data", a).strip() == aid, "init on the forked directory keeps its identity")
    check(vn("put", "--data", a, "still", "no")[0] == EXIT_FORKED, "so it still cannot write")


def test_copied_dir_equal_heads(m):
    """The copies write as many ops each after the copy: b's and c's heads
    for A are at one seq with different hashes, and nothing is sent until
    they find where the branches part, by bisection with WANTs."""
    n = 12
    _, _, b, c, _, dms = copied_dir_fork(m, [("shared", "from a")] + [("a-%d" % i, str(i)) for i in range(n - 1)],
                                         [("shared", "from a2")] + [("a2-%d" % i, str(i)) for i in range(n - 1)])
    st = {x: ml.stats(x) for x in (b, c)}
    check(sum(st[x]["wants_sent"] for x in (b, c)) >= 1 and sum(st[x]["wants_served"] for x in (b, c)) >= 1,
          "b and c found the split with WANTs: %s" % {x: (st[x]["wants_sent"], st[x]["wants_served"]) for x in (b, c)})
    for dm in dms.values():
        dm.stop()


def test_restored_backup(m):
    """A backed up, writes on (B receives them), then A's directory is
    restored from the backup and writes offline before it meets B again:
    the same seqs, other ops. One verdict, on both."""
    a, b = m.init("a"), m.init("b")
    aid = node_id(a)
    vn_ok("put", "--data", a, "k", "before")
    k = ml.status(a)["seq"]
    backup = os.path.join(m.root, "backup")
    copy_dir(a, backup)

    db = m.start(b)
    da = m.start(a, peers=[db.port])
    vn_ok("put", "--data", a, "k", "lost 1")
    vn_ok("put", "--data", a, "k2", "lost 2")
    ml.wait_converged([a, b])
    check(get(b, "k") == "lost 1", "b holds a's writes after the backup")
    da.stop()
    shutil.rmtree(a)
    copy_dir(backup, a)  # the restore
    vn_ok("put", "--data", a, "k", "restored")  # offline: nothing tells the copy it is behind
    check(get(a, "k") == "restored" and ml.status(a)["seq"] == k + 1, "the restored copy wrote seq %d" % (k + 1))

    da.start()
    wait_fork([a, b], aid, k + 1, "a and b to list a's fork at seq %d" % (k + 1))
    ml.wait_converged([a, b])
    for d in (a, b):
        check(get(d, "k") == "before" and get(d, "k2") is None, "%s: only the write before the backup stays" % d)
    vn_ok("put", "--data", b, "b-after", "ok")  # the other origin writes on
    ml.wait_until(lambda: get(a, "b-after") == "ok", 60, "b's write after the verdict to reach a")
    check_put_refused(a, "a")
    check_stats([a, b])
    da.stop()
    db.stop()


if __name__ == "__main__":
    ml.main([
        ("copied_dir", test_copied_dir),
        ("copied_dir_equal_heads", test_copied_dir_equal_heads),
        ("restored_backup", test_restored_backup),
    ])
