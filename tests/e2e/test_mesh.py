"""End-to-end: vix-node daemons as real processes on 127.0.0.1.

    python3 test_mesh.py PATH_TO_VIX_NODE [TEST...]

Each test gets its own temporary directories and ports (port 0: the daemon
logs the one it got). Every wait is bounded; timing only ever acts as a
generous timeout. VN_E2E_KEEP=1 keeps the directories of a failed test.
"""

import os
import re
import random
import threading
import time

import meshlib as ml
from meshlib import check, vn, vn_ok

# VS_WIRE_VERSION, read from src/wire.h so a new version needs no edit here.
WIRE = int(re.search(r"#define VS_WIRE_VERSION (\d+)u",
                     open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "wire.h")).read()).group(1))


def put(d, target, value):
    return vn("put", "--data", d, target, value)[0]


def get(d, target):
    rc, out, _ = vn("get", "--data", d, target)
    return out.rstrip("\n") if rc == 0 else None


def dump_map(d):
    return {e["target"]: e.get("value") for e in ml.dump(d)}


def node_id(d):
    return ml.status(d)["node_id"]


stats = ml.stats


# ---- tests ----

def test_line_converges(m):
    """A - B - C: B dials both ends; A and C never meet, B relays."""
    a, b, c = m.init("a"), m.init("b"), m.init("c")
    vn_ok("put", "--data", a, "colour", "blue")  # before any daemon runs
    da, dc = m.start(a), m.start(c)
    db = m.start(b, peers=[da.port, dc.port])
    for i in range(10):
        check(put(a, "a%d" % i, "from a %d" % i) == 0, "put on a")
        vn_ok("incr", "--data", c, "hits", "1")
        vn_ok("incr", "--data", a, "hits", "2")
    vn_ok("put", "--data", b, "colour", "green")
    vn_ok("del", "--data", c, "a3")
    ml.wait_converged([a, b, c])
    converged_ms = int(time.time() * 1000)
    dumps = [ml.dump(x) for x in (a, b, c)]
    check(dumps[0] == dumps[1] == dumps[2], "dump --json differs between a, b and c")
    check(get(c, "hits") == "30" and get(a, "a9") == "from a 9" and get(a, "a3") is None, "values on a and c")
    ids = {node_id(x) for x in (a, b, c)}
    check(set(ml.status(a)["vv"]) == ids, "a's version vector names all three origins (relay through b)")
    ml.wait_until(lambda: len(ml.ready_peers(b)) == 2, 30, "b to list two ready peers")
    check({p["node_id"] for p in ml.ready_peers(b)} == {node_id(a), node_id(c)}, "b's peers are a and c")
    # run.json is refreshed about once a second: counters are waited for.
    ml.wait_until(lambda: stats(a)["nudges"] >= 1, 30, "CLI writes to nudge a's daemon")
    for x in (a, b, c):
        r = stats(x, converged_ms)["rejected"]
        check(sum(r.values()) - r["unknown_peer"] == 0, "an honest mesh rejects nothing: %s" % r)
    # With VIX_NODE_RX_MIN_BYTES=0 (the e2e_test_mesh_rx_pipeline variant)
    # every frame of an established session goes through the second thread.
    if os.environ.get("VIX_NODE_RX_MIN_BYTES") == "0":
        check(stats(b, converged_ms)["rx_pipelined"] > 0, "b applied frames through its receive pipeline")
    for dm in (db, da, dc):
        dm.stop()
    check(ml.status(a)["daemon"] is None and ml.status(a)["peers"] == [], "no daemon after a clean stop")


def test_offline_then_recover(m):
    """Writes on both sides while a peer is down arrive once it is back."""
    a, b = m.init("a"), m.init("b")
    da = m.start(a)
    db = m.start(b, peers=[da.port])
    vn_ok("put", "--data", a, "k0", "v0")
    ml.wait_converged([a, b])
    da.stop()
    for i in range(5):
        vn_ok("put", "--data", a, "off-a%d" % i, str(i))  # no daemon on a
        vn_ok("incr", "--data", b, "n", "1")               # b's daemon runs, its peer is gone
    check(get(b, "off-a0") is None and get(a, "n") is None, "nothing crossed while a was down")
    da.start()  # the same port: b's dial reconnects with its backoff
    ml.wait_converged([a, b])
    check(get(b, "off-a4") == "4" and get(a, "n") == "5", "offline writes arrived on both sides")
    ml.wait_until(lambda: stats(b)["dial_attempts"] >= 2, 30, "b's status to show it redialled a")
    ml.wait_until(lambda: ml.status(a)["outbox"]["pending"] + ml.status(a)["outbox"]["inflight"] == 0, 30,
                  "a's outbox to drain")
    db.stop()
    da.stop()


def test_kill9_during_puts(m):
    """50 rounds: concurrent puts while a's daemon is killed with SIGKILL.
    Every put that exited 0 is on a after the restart, and reaches b."""
    a, b = m.init("a"), m.init("b")
    db = m.start(b)
    da = m.start(a, peers=[db.port])
    rng = random.Random(int(os.environ.get("VN_E2E_SEED", "7")))
    acked, failed = {}, []
    lock = threading.Lock()

    def writer(w, r, stop):
        i = 0
        while not stop.is_set() and i < 200:
            key, value = "r%dw%di%d" % (r, w, i), "%x" % rng.getrandbits(32)
            rc, _, err = vn("put", "--data", a, key, value)
            with lock:
                if rc == 0:
                    acked[key] = value
                else:  # a daemon's death must not fail a CLI write
                    failed.append("%s: exit %d %s" % (key, rc, err.strip()[:200]))
            i += 1

    for r in range(50):
        if da.proc is None:
            da.start(0)
        stop = threading.Event()
        ths = [threading.Thread(target=writer, args=(w, r, stop)) for w in range(2)]
        for t in ths:
            t.start()
        time.sleep(rng.uniform(0.02, 0.3))
        da.kill()
        if r == 0:
            live = ml.status(a)
            check(live["daemon"] is None and live["peers"] == [], "a stale run.json shows no daemon after kill -9")
        time.sleep(rng.uniform(0.0, 0.1))
        stop.set()
        for t in ths:
            t.join(timeout=120)
    check(not failed, "puts failed while the daemon was killed: %s" % failed[:3])
    check(len(acked) > 50, "the writers got puts through (%d)" % len(acked))
    have = dump_map(a)
    lost = [k for k, v in acked.items() if have.get(k) != v]
    check(not lost, "acknowledged puts missing on a: %s" % lost[:5])
    da.start(0)
    def b_has_all():
        have_b = dump_map(b)
        return all(have_b.get(k) == v for k, v in acked.items())

    ml.wait_until(b_has_all, 90, "every acknowledged put to reach b")
    ml.wait_converged([a, b])
    db.stop()
    da.stop()


def test_mesh_key_isolation(m):
    """x runs with another mesh key (--mesh-key overrides the stored one):
    it learns nothing from a and b, and teaches them nothing, whichever side
    dials."""
    a, b, x, y = m.init("a"), m.init("b"), m.init("x"), m.init("y")
    other = m.other_key("other.key")
    for d in (a, b, x, y):
        vn_ok("put", "--data", d, "from-" + os.path.basename(d), "1")
    dx = m.start(x, extra=["--mesh-key", other])
    da = m.start(a, peers=[dx.port])         # a dials the outsider
    db = m.start(b, peers=[da.port])
    dy = m.start(y, peers=[da.port], extra=["--mesh-key", other])  # the outsider dials a
    ml.wait_converged([a, b])
    ml.wait_until(lambda: stats(x)["rejected"]["auth"] >= 2 and stats(a)["rejected"]["auth"] >= 2, 60,
                  "both sides to refuse the foreign handshakes twice")
    check(get(a, "from-b") == "1" and get(b, "from-a") == "1", "a and b share")
    for outsider in (x, y):
        check(list(ml.status(outsider)["vv"]) == [node_id(outsider)], "%s learned nothing" % outsider)
        check(ml.status(outsider)["peers"] == [] or not ml.ready_peers(outsider), "%s has no ready peer" % outsider)
    for insider in (a, b):
        check(set(ml.status(insider)["vv"]) == {node_id(a), node_id(b)}, "%s learned nothing foreign" % insider)
    ml.wait_until(lambda: stats(a)["handshakes_done"] >= 1, 30, "a's status to show its handshake with b")
    check(stats(x)["handshakes_done"] == 0 and stats(y)["handshakes_done"] == 0, "no outsider completed a handshake")
    for dm in (dy, db, da, dx):
        dm.stop()


def test_garbage_and_half_open_flood(m):
    """Garbage datagrams, garbage frames through real ENet sessions and a
    flood of half-open connection attempts: the node stays up, its state
    is unchanged, and it syncs with a legitimate peer afterwards."""
    a, b = m.init("a"), m.init("b")
    vn_ok("put", "--data", a, "ka", "1")
    vn_ok("put", "--data", b, "kb", "2")
    da = m.start(a)
    before = ml.fingerprint(a)
    seed = int(os.environ.get("VN_E2E_SEED", "11"))
    rng = random.Random(seed)
    # Frames that reach vs_node_on_frame: an ENet session per payload (the
    # node closes a connection at its first bad handshake frame).
    # Wire version WIRE; a HELLO of the version before and of the one after are refused by version.
    v, old, new = bytes([WIRE]), bytes([WIRE - 1]), bytes([WIRE + 1])
    payloads = [b"", v, v + b"\x01" + rng.randbytes(64), v + b"\x01" + rng.randbytes(10),
                new + b"\x01" + rng.randbytes(64), old + b"\x01" + rng.randbytes(64),
                v + b"\x06" + rng.randbytes(80), v + b"\x04" + rng.randbytes(40), v + b"\x09" + rng.randbytes(5),
                rng.randbytes(1000)]
    sessions = []
    for p in payloads:
        r = ml.RawEnet(da.port)
        r.send(p)
        r.send(rng.randbytes(rng.randrange(1, 300)))
        sessions.append(r)
    ml.blast_garbage(da.port, 4000, rng)
    ml.flood_half_open(da.port, 3000, rng)
    # After the floods: they come from its address too, and would evict it
    # (the oldest connection without a HELLO goes first, see run.c).
    silent = ml.RawEnet(da.port)  # connects, never says HELLO: the node's HELLO deadline
    check(da.alive(), "a's daemon survived the garbage")
    ml.wait_until(lambda: stats(a)["half_open_resets"] > 0, 30, "the half-open sweep to reset flooded slots")
    ml.wait_until(lambda: stats(a)["handshakes_timeout"] >= 1, 30, "the silent session to time out")
    ml.wait_until(lambda: (lambda r: r["auth"] >= 1 and r["malformed"] >= 1 and r["state"] >= 1)(stats(a)["rejected"]),
                  30, "the garbage frames to be counted by kind")
    for s in sessions + [silent]:
        s.close()
    check(ml.fingerprint(a) == before, "garbage changed a's state")
    db = m.start(b, peers=[da.port])
    ml.wait_converged([a, b], 90)
    check(get(b, "ka") == "1" and get(a, "kb") == "2", "a syncs with b after the flood")
    check(da.alive(), "a's daemon is still up")
    db.stop()
    da.stop()


def test_run_errors(m):
    """Exit codes of run: --help 0, bad arguments 2, no store 3, port in use 4,
    a second daemon on one directory 3."""
    a, b = m.init("a"), m.init("b")
    rc, out, _ = vn("run", "--help")
    check(rc == 0 and "--listen" in out, "run --help")
    check(vn("run", "--data", a)[0] == 2, "missing --listen is a usage error")
    check(vn("run", "--data", a, "--listen", "127.0.0.1")[0] == 2, "an address without a port")
    check(vn("run", "--data", a, "--listen", "127.0.0.1:0", "--log-level", "loud")[0] == 2, "bad log level")
    check("--rekey-grace DUR" in out, "run --help names --rekey-grace")
    for bad in ("0s", "10", "5x", "", "-1s", "3651d"):
        rc, _, err = vn("run", "--data", a, "--listen", "127.0.0.1:0", "--rekey-grace", bad)
        check(rc == 2 and len(err.splitlines()) == 1 and "--rekey-grace" in err, "bad --rekey-grace %r: %r" % (bad, err))
    check(vn("run", "--data", a, "--listen", "127.0.0.1:0", "--rekey-grace")[0] == 2, "--rekey-grace without DUR")
    check("--ack-interval DUR" in out, "run --help names --ack-interval")
    for bad in ("0s", "10", "off", "", "99ms", "2h"):
        rc, _, err = vn("run", "--data", a, "--listen", "127.0.0.1:0", "--ack-interval", bad)
        check(rc == 2 and len(err.splitlines()) == 1 and "--ack-interval" in err, "bad --ack-interval %r: %r" % (bad, err))
    env = dict(os.environ, VIX_NODE_RX_MIN_BYTES="64k")
    check(vn("run", "--data", a, "--listen", "127.0.0.1:0", env=env)[0] == 2, "a bad VIX_NODE_RX_MIN_BYTES")
    check(vn("run", "--data", os.path.join(m.root, "nothing"), "--listen", "127.0.0.1:0")[0] == 3, "no store")
    da = m.start(a)
    check(vn("run", "--data", b, "--listen", "127.0.0.1:%d" % da.port, timeout=30)[0] == 4, "port in use")
    check(vn("run", "--data", a, "--listen", "127.0.0.1:0", timeout=30)[0] == 3, "second daemon on one dir")
    da.stop()


def test_demo(m):
    """`vix-node demo` runs its three-node story and exits 0."""
    rc, out, err = vn("demo", timeout=300)
    check(rc == 0, "demo exited %d\nstdout:\n%s\nstderr:\n%s" % (rc, out, err[-3000:]))
    check("converged" in out, "demo output says it converged:\n%s" % out)


if __name__ == "__main__":
    ml.main([
        ("run_errors", test_run_errors),
        ("line_converges", test_line_converges),
        ("offline_then_recover", test_offline_then_recover),
        ("mesh_key_isolation", test_mesh_key_isolation),
        ("garbage_and_half_open_flood", test_garbage_and_half_open_flood),
        ("kill9_during_puts", test_kill9_during_puts),
        ("demo", test_demo),
    ])
