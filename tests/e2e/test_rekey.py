"""End-to-end, issue 16 "Rekey": after a revoke the mesh key rotates, with
real vix-node daemons on 127.0.0.1 and no key copied by hand.

    python3 test_rekey.py PATH_TO_VIX_NODE [TEST...]

A creates the mesh and invites B, C and D; the four run and converge. D is
stopped (offline). A revokes C while C runs: `revoke` writes the cut and at
once a rekey (epoch 1, boxed for A, B and D). A and B switch to the new key
(status: key_epoch == mesh_epoch >= 1); C is shut out and keeps dialling in
vain, its key_epoch stays 0, its writes past the cut are on neither. A
device that joined with an invite made before the rekey and was away past
the grace (--rekey-grace 1s) comes in on its old key blind, its admission
makes it a member, and it is boxed in a new epoch.
A and B restart: their fresh sessions use the new key (no handshake on an
older one) and B's write reaches A. D comes back on its old key, as an
active member: it is let in, gets the new key and syncs; C, started again,
is refused by the restarted A and B. An invite made after the rekey carries
the new key: E joins with it and syncs on it (and A boxes the key again for E).
And a revoke with no daemon running anywhere rotates the key by itself; one
whose rekey does not fit the store stands, says so, exits 3, and the
admin's daemon rotates the key later.

Every wait is bounded; timing only ever acts as a generous timeout, or
makes a precondition certain (the grace is over). The figures printed
(`figure ...`) are how long each step took. VN_E2E_KEEP=1 keeps the
directories of a failed test.
"""

import json
import os
import re
import shutil
import time

import meshlib as ml
import meshtoken
from meshlib import check, vn, vn_ok
from test_members import get, invite, join, mesh_key, new_mesh, origin_ops

SYNC_S = 60.0
GRACE = ["--rekey-grace", "1s"]
GRACE_S = 1.0


def members_json(d):
    out = vn_ok("members", "--data", d, "--json")
    doc = json.loads(out)
    check(isinstance(doc, dict) and isinstance(doc.get("members"), list), "members --json is an object: %r" % out)
    return doc


def epochs(d):
    """(mesh_epoch, key_epoch) of the daemon on d (its status JSON)."""
    s = ml.stats(d)
    return s["mesh_epoch"], s["key_epoch"]


def holds_newest(d, at_least=1):
    """The daemon on d holds the mesh's current key, of epoch >= at_least."""
    mesh, key = epochs(d)
    return mesh >= at_least and key == mesh


def figure(what, t0):
    print("figure %s: %.2f s" % (what, time.monotonic() - t0), flush=True)


KEY_EVENT = re.compile(r"^ts=(\d+) level=\w+ event=mesh_key mesh_epoch=(\d+) key_epoch=(\d+) ", re.M)


def key_logged_ms(dm, epoch):
    """The wall ms at which the daemon logged holding the key of `epoch` or
    a later one (event=mesh_key, key_epoch == mesh_epoch), else None."""
    for ts, mesh, key in KEY_EVENT.findall(dm.text()):
        if int(key) >= epoch and int(key) == int(mesh):
            return int(ts)
    return None


def key_figure(what, dm, epoch, since_wall_ms):
    ts = ml.wait_until(lambda: key_logged_ms(dm, epoch), SYNC_S, "%s to log event=mesh_key" % dm.dir)
    print("figure %s: %d ms (event=mesh_key)" % (what, ts - since_wall_ms), flush=True)


def test_revoke_rekey(m):
    a, aid = new_mesh(m, "a")
    base = mesh_key(a)
    b, bid, _ = join(m, "b", invite(a))
    c, cid, _ = join(m, "c", invite(a))
    d, did, _ = join(m, "d", invite(a))
    tok_f = invite(a)  # used only after the rekey and its grace
    check(meshtoken.decode(tok_f)["mesh_key"] == base, "an invite before any rekey carries the base key")
    doc = members_json(a)
    check((doc["epoch"], doc["key_epoch"]) == (0, 0), "a new mesh is at epoch 0: %r" % doc)
    text = vn_ok("members", "--data", a).splitlines()
    check(text[-1] == "epoch 0 (this device holds 0)", "members ends with the epoch line: %r" % text[-1])

    da = m.start(a, extra=GRACE)
    db = m.start(b, peers=[da.port], extra=GRACE)
    dc = m.start(c, peers=[da.port, db.port], extra=GRACE)
    dd = m.start(d, peers=[da.port, db.port], extra=GRACE)
    for x, name in ((b, "b"), (c, "c"), (d, "d")):
        vn_ok("put", "--data", x, name + "0", "from " + name)
    ml.wait_converged([a, b, c, d], SYNC_S)
    ml.wait_until(lambda: all(len(members_json(x)["members"]) == 4 for x in (a, b, c, d)), SYNC_S,
                  "every node to list the four members")
    for x in (a, b, c, d):
        s = ml.stats(x)
        check((s["mesh_epoch"], s["key_epoch"], s["rekeys_issued"], s["rejected_stale_key"]) == (0, 0, 0, 0),
              "%s: no rekey before a revoke: %r" % (x, s))

    dd.stop()  # d is offline during the revoke
    vn_ok("put", "--data", d, "d-offline", "written while offline")

    # The revoke and the rekey, from the command line, with a's daemon running.
    c_seq = ml.status(c)["seq"]
    t_revoke, wall_revoke = time.monotonic(), int(time.time() * 1000)
    out = vn_ok("revoke", "--data", a, cid)
    # Epoch 1, unless a's daemon, seeing the revoke, rotated the key first.
    lines = out.splitlines()
    check(len(lines) == 2 and lines[0] == "revoked %s at seq %d" % (cid, c_seq) and
          lines[1].startswith("mesh key rotated to epoch "), "revoke prints the cut and the new epoch: %r" % out)
    cli_epoch = int(lines[1].rsplit(" ", 1)[1])
    check(cli_epoch >= 1, "a new epoch: %r" % out)
    doc = members_json(a)
    check(doc["epoch"] >= cli_epoch and doc["key_epoch"] == doc["epoch"], "a holds the new key at once: %r" % doc)
    line = vn_ok("members", "--data", a).splitlines()[-1]
    got = re.fullmatch(r"epoch (\d+) \(this device holds (\d+)\)", line)
    check(got and int(got.group(1)) == int(got.group(2)) >= cli_epoch, "the epoch line: %r" % line)
    check(mesh_key(a) == base, "mesh.key (the base key) is not rewritten")

    for i in range(3):  # c writes on, past its cut
        vn_ok("put", "--data", c, "c-after%d" % i, "void")
    vn_ok("put", "--data", b, "b-after", "from b")

    ml.wait_until(lambda: holds_newest(a), SYNC_S, "a's daemon to take the new key", 0.05)
    ml.wait_until(lambda: holds_newest(b), SYNC_S, "b to get the new key from a", 0.05)
    key_figure("revoke started -> a's daemon on the new key", da, 1, wall_revoke)
    key_figure("revoke started -> b on the new key (its box from a)", db, 1, wall_revoke)
    t_grace = time.monotonic()  # from here both are past any learning of epoch 1
    mesh_epoch = epochs(a)[0]
    # Normally the command's rekey is the only one; a's daemon may have
    # written one too if it saw the revoke before the command's rekey.
    print("figure epoch after the revoke: %d (a's daemon issued %d rekeys)"
          % (mesh_epoch, ml.stats(a)["rekeys_issued"]), flush=True)
    check(epochs(b)[0] == mesh_epoch, "a and b agree on the epoch")

    # c is out: closed by both, no ready peer, dialling in vain. (c may
    # complete a handshake on its old key: each such session is closed at
    # once, so "out" is judged by the refusals counted, not by a snapshot
    # of the peers taken at one instant.)
    def refused(x):
        s = ml.stats(x)
        return s["rejected_revoked"] + s["rejected_stale_key"]

    def c_refused(x):
        return refused(x) >= 1 and cid not in [p["node_id"] for p in ml.ready_peers(x)]
    ml.wait_until(lambda: c_refused(a) and c_refused(b), SYNC_S, "a and b to shut c out", 0.05)
    figure("revoke -> c shut out by a and b", t_revoke)
    ml.wait_until(lambda: ml.ready_peers(c) == [], SYNC_S, "c to hold no ready peer")
    dials, before = ml.stats(c)["dial_attempts"], (refused(a), refused(b))
    ml.wait_until(lambda: ml.stats(c)["dial_attempts"] > dials + 2, SYNC_S, "c to keep dialling")
    ml.wait_until(lambda: refused(a) > before[0] and refused(b) > before[1], SYNC_S,
                  "a and b to refuse c's new dials too")
    check(dc.alive(), "c kept running")
    c_mesh, c_key = epochs(c)
    check(c_key == 0 and c_key < mesh_epoch, "c holds no key of epoch 1: mesh %d key %d" % (c_mesh, c_key))
    check(members_json(c)["key_epoch"] == 0, "members on c: key_epoch 0")

    ml.wait_converged([a, b], SYNC_S)
    for x in (a, b):
        check(get(x, "b-after") == "from b" and get(x, "c0") == "from c", "%s: b's new write, c's old one" % x)
        check(all(get(x, "c-after%d" % i) is None for i in range(3)), "%s: c's writes past the cut vanish" % x)
        seqs = origin_ops(x, cid)
        check(seqs and max(seqs) <= c_seq, "%s holds none of c's ops past seq %d: %r" % (x, c_seq, seqs))

    # The grace is over (1 s after a and b learned epoch 1): a device that
    # joined with a token of before the rekey and was away since comes in on
    # that old key blind (sent nothing of a's until its own admission makes
    # it a member), syncs, and, its token having carried an older key, is
    # boxed in a new epoch by a's daemon.
    time.sleep(max(0.0, t_grace + 2 * GRACE_S - time.monotonic()))
    f, fid, _ = join(m, "f", tok_f)
    vn_ok("put", "--data", f, "f0", "from f")
    df = m.start(f, peers=[da.port], extra=GRACE)
    ml.wait_until(lambda: get(a, "f0") == "from f", SYNC_S, "f's write to reach a on f's old key")
    check(fid in [x["node_id"] for x in members_json(a)["members"]], "f is a member on a")
    ml.wait_until(lambda: holds_newest(f, mesh_epoch + 1) and holds_newest(a, mesh_epoch + 1), SYNC_S,
                  "f boxed in a new epoch")
    check(ml.stats(a)["rejected_stale_key"] == 0, "f was not refused")
    mesh_epoch = epochs(a)[0]
    df.stop()

    # Restart a and b (c stopped): fresh handshakes, on the new key only.
    dc.stop()
    da.stop()
    db.stop()
    da.start()
    db.start()
    ml.wait_until(lambda: holds_newest(a) and holds_newest(b), SYNC_S, "a and b to load their keys")
    vn_ok("put", "--data", b, "b-restarted", "from b")
    ml.wait_until(lambda: get(a, "b-restarted") == "from b", SYNC_S, "b's write to reach a after the restart")
    for x in (a, b):
        # The status is written by the daemon from time to time: wait for one
        # that counts the session, then judge it.
        ml.wait_until(lambda: ml.stats(x)["handshakes_done"] >= 1, SYNC_S, "%s's status to count its session" % x)
        s = ml.stats(x)
        check(s["handshakes_stale_key"] == 0, "%s: its sessions use the new key: %r" % (x, s))

    # d comes back on the old key, as an active member: let in, given the new key.
    t_back, wall_back = time.monotonic(), int(time.time() * 1000)
    dd.start()
    ml.wait_until(lambda: holds_newest(d, mesh_epoch), SYNC_S, "d to get the new key", 0.05)
    key_figure("d started -> d holds the new key", dd, mesh_epoch, wall_back)
    ml.wait_until(lambda: ml.stats(a)["handshakes_stale_key"] + ml.stats(b)["handshakes_stale_key"] >= 1, SYNC_S,
                  "a or b to count d's session on its old key")
    check(members_json(d)["key_epoch"] == members_json(d)["epoch"] >= 1, "members on d: the newest key")
    ml.wait_converged([a, b, d], SYNC_S)
    figure("d restarted -> a, b, d converged", t_back)
    for x in (a, b, d):
        check(get(x, "d-offline") == "written while offline" and get(x, "b-restarted") == "from b",
              "%s: d's offline write and b's late one" % x)
        check(all(get(x, "c-after%d" % i) is None for i in range(3)), "%s: none of c's writes past the cut" % x)

    # c again, against the restarted a and b: refused on any key.
    dc.start()
    ml.wait_until(lambda: c_refused(a) and c_refused(b), SYNC_S, "the restarted a and b to refuse c")
    vn_ok("put", "--data", b, "b-late", "not for c")
    ml.wait_converged([a, b, d], SYNC_S)
    check(get(c, "b-late") is None, "c receives nothing written once it is shut out")
    check(epochs(c)[1] == 0, "c stays on no new key")
    dc.stop()

    # An invite made now carries the new key; e joins with it and syncs.
    tok_e = invite(a)
    check(meshtoken.decode(tok_e)["mesh_key"] != base, "an invite after the rekey carries another key than the base")
    e, eid, _ = join(m, "e", tok_e)
    check(mesh_key(e) == meshtoken.decode(tok_e)["mesh_key"], "e's base key is the token's")
    vn_ok("put", "--data", e, "e0", "from e")
    t_e = time.monotonic()
    de = m.start(e, peers=[da.port], extra=GRACE)
    ml.wait_converged([a, b, d, e], SYNC_S)
    figure("e started -> a, b, d, e converged", t_e)
    check(get(a, "e0") == "from e" and get(e, "d-offline") == "written while offline", "e syncs both ways")
    check(ml.stats(e)["handshakes_stale_key"] == 0, "e's sessions are on the current key")
    # e has no box of the current epoch: after a delay that batches joins,
    # an admin boxes the key again, for e too.
    ml.wait_until(lambda: all(holds_newest(x, mesh_epoch + 1) for x in (a, b, d, e)), SYNC_S,
                  "a, b, d and e on an epoch boxed for e")
    figure("e started -> everyone on the epoch boxed for e", t_e)
    check(ml.stats(a)["rekeys_issued"] >= 1, "a's daemon issued that rekey")
    for dm in (da, db, dd, de):
        dm.stop()


def test_revoke_without_daemon(m):
    """`revoke` with no daemon running anywhere rotates the key by itself:
    A's daemon, started afterwards, has nothing left to rekey, and B gets
    the new key from it."""
    a, aid = new_mesh(m, "a")
    b, bid, _ = join(m, "b", invite(a))
    c, cid, _ = join(m, "c", invite(a))
    da = m.start(a)
    db = m.start(b, peers=[da.port])
    dc = m.start(c, peers=[da.port])
    ml.wait_until(lambda: all(len(members_json(x)["members"]) == 3 for x in (a, b, c)), SYNC_S,
                  "every node to list the three members")
    for dm in (da, db, dc):
        dm.stop()
    out = vn_ok("revoke", "--data", a, cid)
    check(out.splitlines()[1:] == ["mesh key rotated to epoch 1"], "the command rotates the key: %r" % out)
    check({k: members_json(a)[k] for k in ("epoch", "key_epoch")} == {"epoch": 1, "key_epoch": 1}, "a holds it")
    check(members_json(b)["key_epoch"] == 0, "b does not hold it yet")
    da.start()
    db.start()
    ml.wait_until(lambda: holds_newest(a) and holds_newest(b), SYNC_S, "b to get the new key from a")
    check(epochs(a) == epochs(b) == (1, 1), "one epoch: %r %r" % (epochs(a), epochs(b)))
    check(ml.stats(a)["rekeys_issued"] == 0, "a's daemon found the key rotated already")
    check(members_json(b)["key_epoch"] == 1, "members on b: epoch 1's key")
    for dm in (da, db):
        dm.stop()


def revoke_copy(m, src, cid, map_bytes, name):
    """`revoke` on a copy of the stopped data directory src, with the store
    limited to map_bytes: (copy, rc, stdout, stderr); outcome "none" (full,
    nothing written), "partial" (the revoke written, not the rekey), "ok"."""
    t = os.path.join(m.root, name)
    shutil.copytree(src, t)
    os.remove(os.path.join(t, "lock.mdb"))
    rc, out, err = vn("revoke", "--data", t, cid, env=dict(os.environ, VIX_NODE_MAP_BYTES=str(map_bytes)))
    kind = "none" if rc == 3 and out == "" else "ok" if rc == 0 else "partial"
    return t, kind, rc, out, err


def test_revoke_rekey_fails(m):
    """The revoke written, its rekey refused (the store is full): the revoke
    stands, `revoke` says so on stderr and exits 3; A's daemon, started
    later with room, rotates the key by itself. The store's limit that
    lets the revoke in but not the rekey is found by bisection on copies
    of A's directory (whole pages: deterministic for one build)."""
    a, aid = new_mesh(m, "a")
    b, bid, _ = join(m, "b", invite(a))
    c, cid, _ = join(m, "c", invite(a))
    da = m.start(a)
    db = m.start(b, peers=[da.port])
    dc = m.start(c, peers=[da.port])
    ml.wait_until(lambda: all(len(members_json(x)["members"]) == 3 for x in (a, b)), SYNC_S,
                  "a and b to list the three members")
    for dm in (da, db, dc):
        dm.stop()
    lines = "".join(json.dumps({"kind": "put", "target": "k%d" % i, "value": "v" * 1500}) + "\n" for i in range(60))
    vn_ok("import", "--data", a, stdin=lines)  # past the smallest store allowed (64 KiB)
    page, tries = 4096, [0]

    def outcome(map_bytes):
        tries[0] += 1
        t, kind, rc, out, err = revoke_copy(m, a, cid, map_bytes, "try%d" % tries[0])
        shutil.rmtree(t)
        return kind
    lo, hi = 64 * 1024, 256 * 1024 * 1024  # lo: nothing written; hi: everything written
    check(outcome(lo) == "none" and outcome(hi) == "ok", "the bounds of the search")
    while hi - lo > page:  # bounded: log2 of the range in pages
        mid = (lo + hi) // 2 // page * page
        if outcome(mid) == "none":
            lo = mid
        else:
            hi = mid
    t, kind, rc, out, err = revoke_copy(m, a, cid, hi, "partial")
    print("figure smallest store that takes the revoke: %d bytes (%s)" % (hi, kind), flush=True)
    check(kind == "partial" and rc == 3, "the revoke fits, its rekey does not: exit %d %r %r" % (rc, out, err))
    check(re.fullmatch(r"revoked %s at seq \d+\n" % cid, out), "the revoke is printed, no epoch: %r" % out)
    check(len(err.splitlines()) == 1 and err.startswith("vix-node revoke: the revoke stands, but the mesh key was "
                                                        "not rotated (VS_ERR_FULL"), "one line says so: %r" % err)
    ms = {x["node_id"]: x for x in members_json(t)["members"]}
    check(ms[cid]["state"] == "revoked" and members_json(t)["epoch"] == 0, "the revoke stands, at epoch 0")
    # A daemon of the admin, with room, rotates the key; b, its peer, gets
    # it. (The node takes its own rekey at once: alone, it once kept epoch 0
    # in its status until a peer made it poll again.)
    dt = m.start(t)
    db.peers = [dt.port]
    db.start()
    ml.wait_until(lambda: holds_newest(t) and holds_newest(b), SYNC_S, "the admin's daemon to rotate the key")
    check(ml.stats(t)["rekeys_issued"] == 1 and epochs(t) == epochs(b) == (1, 1),
          "one rekey, epoch 1: %r %r" % (epochs(t), epochs(b)))
    dt.stop()
    db.stop()


if __name__ == "__main__":
    ml.main([
        ("revoke_rekey", test_revoke_rekey),
        ("revoke_without_daemon", test_revoke_without_daemon),
        ("revoke_rekey_fails", test_revoke_rekey_fails),
    ])
