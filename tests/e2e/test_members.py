"""End-to-end, issue 16: a managed mesh between real vix-node daemons on
127.0.0.1, driven by its command line (init --new-mesh, invite, join,
members, revoke).

    python3 test_members.py PATH_TO_VIX_NODE [TEST...]

A creates the mesh and invites B and C; the three run, write and converge;
every node lists the same three members. A revokes C while C keeps running
and writing: once A and B agree, C's operations up to the cut are on both
and none of C's later ones on either, both list C as revoked at that cut,
both closed C's sessions, and what B writes after that never reaches C. A device that joined with a token no admin issued gets nothing stored
on A. Every wait is bounded; timing only ever acts as a generous timeout.
VN_E2E_KEEP=1 keeps the directories of a failed test.
"""

import json
import os
import re
import stat

import meshlib as ml
import meshtoken
from meshlib import check, vn, vn_ok

HEX64 = re.compile(r"^[0-9a-f]{64}$")
EXIT_NOT_ALLOWED, EXIT_USAGE = 1, 2  # DESIGN.md exit codes
SYNC_S = 60.0


def get(d, target):
    rc, out, _ = vn("get", "--data", d, target)
    return out.rstrip("\n") if rc == 0 else None


def mesh_key(d):
    path = os.path.join(d, "mesh.key")
    check(stat.S_IMODE(os.stat(path).st_mode) == 0o600, "%s is private (0600)" % path)
    with open(path) as f:
        return bytes.fromhex(f.read().strip())


def members(d):
    """The member list of `members --json` ({epoch, key_epoch, members})."""
    rc, out, err = vn("members", "--data", d, "--json")
    check(rc == 0, "members on %s: exit %d, %s" % (d, rc, err.strip()))
    doc = json.loads(out)
    check(sorted(doc) == ["epoch", "key_epoch", "members"] and doc["key_epoch"] <= doc["epoch"],
          "members --json: %r" % out)
    return doc["members"]


def by_id(ms):
    return {m["node_id"]: m for m in ms}


def the_membership(ms):
    """What every node must agree on (last seen is each node's own view)."""
    return [(m["node_id"], m["role"], m["depth"], m["admitted_by"], m["admitted_hlc"], m["state"],
             m.get("cut_seq"), m["revoked_by"]) for m in ms]


def expect_refused(args, rc_want, words, what):
    rc, out, err = vn(*args)
    check(rc == rc_want and out == "", "%s: exit %d (want %d), stdout %r, stderr %r" % (what, rc, rc_want, out, err))
    lines = err.splitlines()
    check(len(lines) == 1 and lines[0].startswith("vix-node %s: " % args[0]), "%s: one error line: %r" % (what, err))
    for w in words:
        check(w in lines[0], "%s: the error says %r: %r" % (what, w, lines[0]))


def origin_ops(d, origin):
    """The seqs of `origin`'s operations d holds."""
    return sorted(op["seq"] for op in (json.loads(l) for l in vn_ok("log", "--data", d, "--json").splitlines()
                                        if l.strip()) if op["origin"] == origin)


def new_mesh(m, name):
    d = os.path.join(m.root, name)
    out = vn_ok("init", "--data", d, "--new-mesh")
    check(HEX64.match(out.strip()) and out.endswith("\n") and out.count("\n") == 1, "init prints the node id")
    return d, out.strip()


def invite(d, *args):
    out = vn_ok("invite", "--data", d, *args)
    check(out.endswith("\n") and out.count("\n") == 1, "invite prints one line: %r" % out)
    return out.strip()


def join(m, name, token, stdin=False):
    """`join --data DIR TOKEN`, or with TOKEN '-' and the token on stdin."""
    d = os.path.join(m.root, name)
    rc, out, err = vn("join", "--data", d, "-", stdin=token + "\n") if stdin else vn("join", "--data", d, token)
    check(rc == 0 and HEX64.match(out.strip()), "join %s: exit %d, stdout %r, stderr %r" % (name, rc, out, err))
    return d, out.strip(), err


def test_invite_join_revoke(m):
    a, aid = new_mesh(m, "a")
    key = mesh_key(a)
    ms = members(a)
    check([(x["node_id"], x["role"], x["depth"], x["admitted_by"], x["state"]) for x in ms] ==
          [(aid, "admin", 0, None, "active")], "a new mesh has its creator as sole admin: %r" % ms)
    expect_refused(("init", "--data", a, "--new-mesh"), EXIT_NOT_ALLOWED, ["managed mesh"], "init --new-mesh again")

    tok_b = invite(a)
    tok_c = invite(a, "--role", "writer", "--expires", "2h", "--addr", "127.0.0.1:1", "--addr", "localhost:2")
    for tok, addrs in ((tok_b, []), (tok_c, ["127.0.0.1:1", "localhost:2"])):
        t = meshtoken.decode(tok)
        check(t["mesh_key"] == key and t["inviter"].hex() == aid and t["addrs"] == addrs,
              "the token carries a's mesh key, a as inviter and the --addr list: %r" % t["addrs"])
    check(tok_b != tok_c, "two invites, two tokens")

    b, bid, _ = join(m, "b", tok_b)
    c, cid, hint = join(m, "c", "  " + tok_c + "\n")  # surrounding whitespace is trimmed
    check("--peer 127.0.0.1:1 --peer localhost:2" in hint, "join shows the token's addresses: %r" % hint)
    check(mesh_key(b) == key and mesh_key(c) == key, "join stores the token's mesh key")
    check(len({aid, bid, cid}) == 3, "three identities")
    expect_refused(("join", "--data", b, tok_c), EXIT_NOT_ALLOWED, [], "join on a device already in the mesh")

    da = m.start(a)
    db = m.start(b, peers=[da.port])
    dc = m.start(c, peers=[da.port, db.port])
    for i in range(3):
        vn_ok("put", "--data", b, "b%d" % i, "from b")
        vn_ok("put", "--data", c, "c%d" % i, "from c")
    vn_ok("incr", "--data", c, "count", "5")
    ml.wait_converged([a, b, c], SYNC_S)
    check(ml.dump(a) == ml.dump(b) == ml.dump(c), "the three dumps are equal")
    check(get(a, "c2") == "from c" and get(c, "b2") == "from b", "writes of b and c everywhere")

    views = [members(d) for d in (a, b, c)]
    check(all(the_membership(v) == the_membership(views[0]) for v in views), "the same members everywhere: %r" % views)
    ms = by_id(views[0])
    check(sorted(ms) == sorted([aid, bid, cid]), "three members: %r" % sorted(ms))
    for x, role, depth, by in ((aid, "admin", 0, None), (bid, "writer", 1, aid), (cid, "writer", 1, aid)):
        check((ms[x]["role"], ms[x]["depth"], ms[x]["admitted_by"], ms[x]["state"]) == (role, depth, by, "active"),
              "member %s: %r" % (x[:8], ms[x]))
        check("cut_seq" not in ms[x] and ms[x]["revoked_by"] is None, "active: no cut")
    c_seq = ml.status(c)["seq"]
    check(ms[cid]["seq"] == c_seq and ms[cid]["last_hlc"] is not None, "members shows c's newest op: %r" % ms[cid])

    # Not allowed: exit 1, a clear line, nothing written.
    before = ml.fingerprint(b)
    expect_refused(("invite", "--data", b), EXIT_NOT_ALLOWED, ["not allowed", "admin"], "a writer invites")
    expect_refused(("revoke", "--data", b, cid), EXIT_NOT_ALLOWED, ["not allowed"], "a writer revokes")
    check(ml.fingerprint(b) == before, "refusals on b wrote nothing")
    expect_refused(("revoke", "--data", a, "cd" * 32), EXIT_NOT_ALLOWED, ["not a member"], "revoke an unknown device")
    expect_refused(("revoke", "--data", a, aid), EXIT_NOT_ALLOWED, ["itself"], "an admin revokes itself")
    expect_refused(("revoke", "--data", a, "xyz"), EXIT_USAGE, ["DEVICE_ID"], "revoke a bad id")

    # The cut: what a holds of c's chain, which is all of it (converged).
    out = vn_ok("revoke", "--data", a, cid)
    lines = out.splitlines()
    check(len(lines) == 2 and lines[0] == "revoked %s at seq %d" % (cid, c_seq) and
          re.fullmatch(r"mesh key rotated to epoch [1-9][0-9]*", lines[1]),
          "revoke prints the cut and the new epoch: %r (c's seq %d)" % (out, c_seq))
    expect_refused(("revoke", "--data", a, cid), EXIT_NOT_ALLOWED, ["already revoked"], "revoke twice")
    for i in range(3):  # c does not know yet, or does not care: it writes on
        vn_ok("put", "--data", c, "after%d" % i, "void")
    vn_ok("put", "--data", c, "c0", "overwritten after the cut")
    check(ml.status(c)["seq"] == c_seq + 4, "c wrote past its cut")
    vn_ok("put", "--data", b, "b-after", "from b")  # the others keep syncing

    ml.wait_converged([a, b], SYNC_S)
    check(dc.alive(), "c kept running")
    # Disconnected at once, and kept out: both close c's sessions (counted
    # as rejected_revoked) and c is no ready peer of either; what b writes
    # from then on never reaches c.
    def c_out(d):
        return ml.stats(d)["rejected_revoked"] >= 1 and cid not in [p["node_id"] for p in ml.ready_peers(d)]
    ml.wait_until(lambda: c_out(a) and c_out(b), SYNC_S, "a and b to close c's sessions", 0.2)
    vn_ok("put", "--data", b, "b-late", "not for c")
    ml.wait_converged([a, b], SYNC_S)
    check(get(c, "b-late") is None, "c receives nothing written after it was shut out")
    check(c_out(a) and c_out(b), "c did not come back")
    for d in (a, b):
        check(get(d, "b-after") == "from b", "%s: b's write after the revoke" % d)
        for i in range(3):
            check(get(d, "c%d" % i) == "from c", "%s: c's write c%d up to the cut stays" % (d, i))
            check(get(d, "after%d" % i) is None, "%s: c's write after%d past the cut is void" % (d, i))
        check(get(d, "count") == "5", "%s: c's counter up to the cut stays" % d)
        seqs = origin_ops(d, cid)
        check(seqs and max(seqs) <= c_seq, "%s holds none of c's ops past seq %d: %r" % (d, c_seq, seqs))
        ms = by_id(members(d))
        check(ms[cid]["state"] == "revoked" and ms[cid]["cut_seq"] == c_seq and ms[cid]["revoked_by"] == aid,
              "%s lists c revoked by a at seq %d: %r" % (d, c_seq, ms[cid]))
        check(ms[aid]["state"] == ms[bid]["state"] == "active", "%s: a and b stay active" % d)
        text = vn_ok("members", "--data", d).splitlines()
        check(len(text) == 5 and text[0].split()[:2] == ["node_id", "role"] and
              re.fullmatch(r"epoch [1-9][0-9]* \(this device holds [0-9]+\)", text[4]),
              "members: a header, 3 rows and the epoch: %r" % text)
        row = [r for r in text if r.startswith(cid)]
        check(len(row) == 1 and "revoked(cut=%d)" % c_seq in row[0], "the text lists c's cut: %r" % row)
    check(ml.dump(a) == ml.dump(b), "a and b agree")
    for dm in (da, db, dc):
        dm.stop()


def test_forged_token(m):
    """A thief with the mesh key but no invite: a token forged from the
    documented layout (random mesh id, inviter and invite key) joins
    locally, but nothing it writes is stored on A."""
    a, aid = new_mesh(m, "a")
    f, fid, _ = join(m, "f", meshtoken.forged(mesh_key=mesh_key(a)))
    for i in range(3):
        vn_ok("put", "--data", f, "f%d" % i, "forged")
    b, bid, _ = join(m, "b", invite(a))
    vn_ok("put", "--data", b, "b0", "honest")
    da = m.start(a)
    df = m.start(f, peers=[da.port])
    db = m.start(b, peers=[da.port])
    ml.wait_converged([a, b], SYNC_S)  # the honest member's op reached a: a syncs

    def f_refused():
        s = ml.stats(a)
        flat = dict(s, **{"rejected_" + k: v for k, v in s.get("rejected", {}).items()})
        return any(v for k, v in flat.items() if "not_member" in k and isinstance(v, int))

    ml.wait_until(f_refused, SYNC_S, "a to refuse the forged device (a not_member counter)", 0.2)
    check(df.alive(), "f kept running")
    check(all(get(a, "f%d" % i) is None for i in range(3)), "none of f's writes on a")
    check(origin_ops(a, fid) == [] and fid not in ml.status(a)["vv"], "a holds no op of f")
    check(fid not in by_id(members(a)) and sorted(by_id(members(a))) == sorted([aid, bid]),
          "f is not a member on a")
    check(get(a, "b0") == "honest", "b's write is on a")
    for dm in (da, df, db):
        dm.stop()


def test_reader(m):
    """A reader replicates but does not write: once its admission is back
    from a member, its own puts are refused (exit 1, nothing written). A put
    it made before (just joined, its role unknown to it) is kept in its chain
    without effect, on a and on itself, and does not keep it out."""
    a, aid = new_mesh(m, "a")
    vn_ok("put", "--data", a, "x", "from a")
    da = m.start(a)
    # Without --addr the token names the running daemon's address, and join
    # shows it as the --peer to run with.
    tok = invite(a, "--role", "reader")
    here = "127.0.0.1:%d" % da.port
    check(meshtoken.decode(tok)["addrs"] == [here], "the token names a's daemon: %r" % meshtoken.decode(tok)["addrs"])
    r, rid, hint = join(m, "r", tok, stdin=True)
    check(hint.rstrip().endswith("--peer " + here), "join shows a's daemon as the peer: %r" % hint)
    vn_ok("put", "--data", r, "early", "from r")  # its admission is not back yet: taken
    dr = m.start(r, peers=[here])
    ml.wait_until(lambda: get(r, "x") == "from a", SYNC_S, "a's write to reach the reader")
    ml.wait_until(lambda: by_id(members(r)).get(rid, {}).get("role") == "reader", SYNC_S,
                  "the reader to hold its own admission")
    check(by_id(members(a))[rid]["role"] == "reader", "a lists r as a reader")
    ml.wait_until(lambda: by_id(members(a))[rid]["seq"] >= 2, SYNC_S, "r's early put to reach a's chain")
    check(get(a, "early") is None, "a reader's early put has no effect on a")
    check(get(r, "early") is None, "nor on the reader once it knows its role")
    before = ml.fingerprint(r)
    expect_refused(("put", "--data", r, "late", "v"), EXIT_NOT_ALLOWED, ["not allowed", "reader"], "a reader's put")
    expect_refused(("incr", "--data", r, "n", "1"), EXIT_NOT_ALLOWED, ["not allowed"], "a reader's incr")
    expect_refused(("invite", "--data", r), EXIT_NOT_ALLOWED, ["not allowed", "admin"], "a reader invites")
    check(ml.fingerprint(r) == before, "the refusals wrote nothing")
    for dm in (da, dr):
        dm.stop()


def test_new_mesh_over_plain_init(m):
    """`init --new-mesh` on a directory a plain `init` made and nothing was
    written to (or an interrupted --new-mesh left): the identity is kept,
    the open mesh's key replaced by a new one, the mesh created."""
    d = m.init("d")
    node_id = vn_ok("id", "--data", d).strip()
    old_key = mesh_key(d)
    check(vn_ok("init", "--data", d, "--new-mesh").strip() == node_id, "the identity is kept")
    check(mesh_key(d) != old_key, "a new mesh key")
    check([(x["node_id"], x["role"]) for x in members(d)] == [(node_id, "admin")], "d founded the mesh")
    key = mesh_key(d)
    expect_refused(("init", "--data", d, "--new-mesh"), EXIT_NOT_ALLOWED, ["managed mesh"], "--new-mesh again")
    check(vn_ok("init", "--data", d).strip() == node_id and mesh_key(d) == key, "a plain init keeps it all")


def test_open_mesh_refusals(m):
    """A store that never created nor joined a mesh is an open mesh: the
    membership commands say so (exit 1) and write nothing."""
    d = m.init("open")
    vn_ok("put", "--data", d, "x", "1")
    before = ml.fingerprint(d)
    for args in (("invite", "--data", d), ("members", "--data", d), ("members", "--data", d, "--json"),
                 ("revoke", "--data", d, "ab" * 32)):
        expect_refused(args, EXIT_NOT_ALLOWED, ["not a managed mesh"], " ".join(args[:1]) + " on an open mesh")
    check(ml.fingerprint(d) == before, "nothing written")


if __name__ == "__main__":
    ml.main([
        ("invite_join_revoke", test_invite_join_revoke),
        ("forged_token", test_forged_token),
        ("reader", test_reader),
        ("new_mesh_over_plain_init", test_new_mesh_over_plain_init),
        ("open_mesh_refusals", test_open_mesh_refusals),
    ])
