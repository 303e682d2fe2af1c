"""End-to-end: vix-node restore --rebase and orphans with real daemons on 127.0.0.1.

    python3 test_rebase.py PATH_TO_VIX_NODE [TEST...]

A device restored from a backup of its data directory writes at seqs the
mesh already holds; `restore --rebase` of a peer's snapshot orphans those
writes (one stderr line each, `orphans --json` lists them), none is sent,
its chain resumes from the mesh's and nothing forks; `orphans --replay`
writes them again as new operations. A changed byte and a plain `restore`
of a directory with data are refused with nothing changed. Every wait is
bounded; timing only acts as a generous timeout.
"""

import json
import os
import shutil

import meshlib as ml
from meshlib import check, vn, vn_ok


def json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_restored_backup(m):
    a, b = m.init("a"), m.init("b")
    for i in range(3):
        vn_ok("put", "--data", a, "k", "v%d" % i)
    da = m.start(a)
    db = m.start(b, peers=[da.port])
    ml.wait_converged([a, b])
    da.stop()
    db.stop()
    backup = os.path.join(m.root, "a-backup")
    shutil.copytree(a, backup)
    da.start()
    db.start()
    vn_ok("put", "--data", a, "k", "v3")
    vn_ok("put", "--data", a, "k", "v4")
    ml.wait_converged([a, b])
    da.stop()
    db.stop()
    # The device's disk is replaced by the backup; offline, it writes at
    # seqs 4 and 5, which the mesh already holds (other operations).
    shutil.rmtree(a)
    shutil.copytree(backup, a)
    check(ml.status(a)["seq"] == 3, "the backup's chain ends at 3")
    vn_ok("put", "--data", a, "fork-1", "x")
    vn_ok("incr", "--data", a, "fork-n", "7")
    snap = os.path.join(m.root, "b.snap")
    vn_ok("snapshot", "--data", b, "--out", snap)
    # A plain restore: the directory holds data (exit 1, points at --rebase).
    before = ml.fingerprint(a)
    rc, _, err = vn("restore", "--data", a, snap)
    check(rc == 1 and "--rebase" in err, "restore of a directory with data is refused: %d %r" % (rc, err))
    # A changed byte: refused (exit 2), nothing changed.
    bad = os.path.join(m.root, "bad.snap")
    data = bytearray(open(snap, "rb").read())
    data[len(data) // 3] ^= 0x01
    open(bad, "wb").write(bytes(data))
    rc, _, err = vn("restore", "--data", a, bad, "--rebase")
    check(rc == 2 and "nothing installed" in err, "a changed byte is refused: %d %r" % (rc, err))
    check(ml.fingerprint(a) == before, "nothing changed by the refused restores")
    # The rebase.
    rc, out, err = vn("restore", "--data", a, snap, "--rebase", "--json")
    check(rc == 0, "restore --rebase: %d %r" % (rc, err))
    objs = json_lines(out)
    check(len(objs) == 2 and objs[0]["restored"] and objs[1]["rebased"], "two JSON objects: %r" % out)
    r = objs[1]
    check(r["own_anchor"] == 5 and r["own_head_before"] == 5 and r["own_head_after"] == 5, "the chain: %r" % r)
    check(r["orphaned"] == 2 and r["own_held"] == 3 and r["own_kept"] == 0, "2 orphans, 3 held: %r" % r)
    check(err.count("orphaned own operation") == 2, "one stderr line per orphan: %r" % err)
    orphans = json_lines(vn_ok("orphans", "--data", a, "--json"))
    check([o["seq"] for o in orphans] == [4, 5], "orphans --json lists seqs 4 and 5: %r" % orphans)
    check(orphans[0]["kind"] == "put" and orphans[0]["target"] == "fork-1" and orphans[0]["value"] == "x",
          "the first orphan's op: %r" % orphans[0])
    check(orphans[1]["kind"] == "incr" and orphans[1]["target"] == "fork-n", "the second: %r" % orphans[1])
    text = vn_ok("orphans", "--data", a)
    check(len(text.splitlines()) == 2 and "\tfork-1\tx" in text, "the text form: %r" % text)
    check(ml.status(a)["state_hash"] == ml.status(b)["state_hash"], "a holds b's state (no orphan counts)")
    # Back online: its chain goes on from 5, nothing forks.
    vn_ok("put", "--data", a, "after", "1")
    da.start()
    db.start()
    ml.wait_converged([a, b])
    for d in (a, b):
        s = ml.status(d)
        check(not s["forks"], "%s: no fork: %r" % (d, s["forks"]))
    check(ml.status(b)["vv"][ml.status(a)["node_id"]] == 6, "b holds a's chain to 6")
    rc, _, _ = vn("get", "--data", b, "fork-1")
    check(rc == 1, "no orphan reached b")
    # Replayed as new writes, pushed by the running daemon.
    out = vn_ok("orphans", "--data", a, "--replay", "--json")
    check(json.loads(out)["replayed"] == 2, "replayed 2: %r" % out)
    check(vn_ok("orphans", "--data", a, "--json").strip() == "", "no orphan left")
    check(json.loads(vn_ok("orphans", "--data", a, "--replay", "--json"))["replayed"] == 0, "nothing twice")
    ml.wait_converged([a, b])
    check(vn_ok("get", "--data", b, "fork-1").strip() == "x", "the replayed put reached b")
    check(vn_ok("get", "--data", b, "fork-n").strip() == "7", "the replayed incr counted once")
    for d in (a, b):
        check(not ml.status(d)["forks"], "%s: still no fork" % d)
    da.stop()
    db.stop()


if __name__ == "__main__":
    ml.main([
        ("restored_backup", test_restored_backup),
    ])
