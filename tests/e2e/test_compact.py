"""End-to-end: delivered outbox entries do not pile up (issue 17). A daemon
purges every sink's DONE entries past `run --purge-done-after N`, in
bounded steps, while it replicates; `vix-node compact` purges the rest on
demand, with a daemon running on the directory or not.

    python3 test_compact.py PATH_TO_VIX_NODE [TEST...]

Timing never decides pass or fail: every wait is a generous deadline.
"""

import json
import os
import re
import subprocess
import sys
import threading
import urllib.request

import meshlib as ml
from meshlib import check, vn, vn_ok

WRITES = 10000
RECEIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "http_receiver.py")


def import_puts(d, n, tag):
    lines = "".join(json.dumps({"kind": "put", "target": "%s-%05d" % (tag, i), "value": str(i)}) + "\n"
                    for i in range(n))
    out = vn_ok("import", "--data", d, stdin=lines)
    check(out.strip() == str(n), "import committed %d lines: %r" % (n, out))


def mesh_sink(d):
    sinks = {s["name"]: s for s in ml.status(d)["sinks"]}
    check("default" in sinks, "the mesh sink is listed: %r" % sinks)
    return sinks["default"]


def delivered(d, total):
    """The mesh sink has nothing left to deliver and every entry is counted
    either in it (DONE) or as purged by the daemon."""
    s = mesh_sink(d)
    return s["pending"] == 0 and s["inflight"] == 0 and s["failed"] == 0


def compact(d):
    out = vn_ok("compact", "--data", d, "--json")
    r = json.loads(out)
    for k in ("outbox_purged", "sinks", "used_bytes_before", "used_bytes_after"):
        check(k in r, "compact --json has %s: %r" % (k, r))
    return r


def test_daemon_purges_past_threshold(m):
    """Two daemons, a few thousand writes on one: once delivered, its mesh
    sink holds at most N DONE entries while the daemon runs, every other one
    counted as outbox_purged; `compact` beside the running daemon purges the
    rest, and replication goes on."""
    keep = 100
    a, b = m.init("a"), m.init("b")
    da = m.start(a, extra=["--purge-done-after", str(keep)])
    db = m.start(b, peers=[da.port], extra=["--purge-done-after", str(keep)])
    import_puts(a, WRITES, "a")
    ml.wait_converged([a, b], 120)
    ml.wait_until(lambda: delivered(a, WRITES), 120, "a's writes to be acknowledged")
    ml.wait_until(lambda: mesh_sink(a)["done"] <= keep, 120, "a's DONE entries to fall to %d" % keep)
    st = ml.stats(a, ml.status(a)["daemon"]["updated_ms"])
    s = mesh_sink(a)
    check(s["done"] == keep, "the daemon keeps the %d youngest DONE entries: %r" % (keep, s))
    check(st["outbox_purged"] + s["done"] == WRITES,
          "every write is DONE or purged, once: %d purged + %d done" % (st["outbox_purged"], s["done"]))
    # A step looks at 4,096 entries at most: more than twice that took steps.
    check(st["purge_steps"] >= 3, "purged in bounded steps: %r" % st["purge_steps"])
    # On demand, beside the running daemon: the rest goes.
    r = compact(a)
    check(r["outbox_purged"] == keep, "compact purged the %d kept: %r" % (keep, r))
    check([x["done"] for x in r["sinks"] if x["name"] == "default"] == [0], "nothing DONE left: %r" % r)
    check(da.alive(), "the daemon survived a compact beside it")
    # Replication goes on after it, both ways.
    vn_ok("put", "--data", a, "after-compact", "1")
    vn_ok("put", "--data", b, "from-b", "2")
    ml.wait_converged([a, b], 60)
    ml.wait_until(lambda: delivered(a, WRITES + 1), 60, "the new write to be acknowledged")
    check(vn_ok("get", "--data", b, "after-compact").strip() == "1", "b has a's write made after the compact")
    db.stop()
    da.stop()


def test_compact_stopped_node(m):
    """With the automatic purge off every delivered entry stays DONE; on the
    stopped node `compact` purges them all and says so; a second compact
    finds nothing; the text form and the exit codes follow the contract."""
    a, b = m.init("a"), m.init("b")
    da = m.start(a, extra=["--purge-done-after", "off"])
    db = m.start(b, peers=[da.port])
    import_puts(a, WRITES, "s")
    ml.wait_converged([a, b], 120)
    ml.wait_until(lambda: delivered(a, WRITES) and mesh_sink(a)["done"] == WRITES, 120,
                  "a's writes to be acknowledged")
    check(ml.stats(a)["outbox_purged"] == 0, "off: the daemon purged nothing")
    db.stop()
    da.stop()
    r = compact(a)
    check(r["outbox_purged"] == WRITES, "compact purged every delivered entry: %r" % r)
    check([x["done"] for x in r["sinks"] if x["name"] == "default"] == [0], "nothing DONE left: %r" % r)
    check(r["used_bytes_after"] <= r["used_bytes_before"], "the store did not grow: %r" % r)
    check(mesh_sink(a)["done"] == 0, "status agrees")
    again = compact(a)
    check(again["outbox_purged"] == 0, "a second compact finds nothing: %r" % again)
    rc, out, err = vn("compact", "--data", a)
    check(rc == 0 and out.startswith("log: an open mesh keeps its log") and
          "\noutbox: purged 0 delivered entries" in out and "store: used_bytes" in out,
          "the text form: %r %r" % (out, err))
    # The data are intact: the state is what b holds.
    check(ml.dump(a) == ml.dump(b), "compact changed no value")
    rc, out, err = vn("compact", "--data", m.root + "/missing")
    check(rc == 3, "compact on a missing directory: exit 3, got %d (%s)" % (rc, err.strip()))
    rc, out, err = vn("compact", "--data", a, "--bogus")
    check(rc == 2, "compact with a bad option: exit 2, got %d" % rc)
    rc, out, err = vn("run", "--data", a, "--listen", "127.0.0.1:0", "--purge-done-after", "-1")
    check(rc == 2 and "--purge-done-after" in err, "run --purge-done-after -1: exit 2, got %d %r" % (rc, err))


def test_compact_copy(m):
    """`compact --copy NEWDIR`: the purge frees pages but the store file
    keeps its size; the copy is about the pages in use, holds the same
    state and key files, opens as a node (same id, same dump); never over an
    existing directory (exit 3), never beside a running daemon (exit 3)."""
    a = m.init("a")
    import_puts(a, WRITES, "c")
    overwrite = "\n".join(json.dumps({"kind": "put", "target": "key%03d" % (i % 50), "value": "x" * 200})
                           for i in range(4000))
    vn_ok("import", "--data", a, stdin=overwrite + "\n")
    before = ml.status(a)["store"]
    new = os.path.join(m.root, "a-compact")
    r = json.loads(vn_ok("compact", "--data", a, "--copy", new, "--json"))
    check(r["file_bytes"] == before["file_bytes"], "the store file keeps its size in place: %r %r" % (r, before))
    check(r["copy"]["file_bytes"] < r["file_bytes"], "the copy is smaller than the file: %r" % r)
    check(r["copy"]["file_bytes"] <= r["used_bytes_after"] + 65536, "the copy is about the pages in use: %r" % r)
    print("  file %d bytes, used %d, copy %d" % (r["file_bytes"], r["used_bytes_after"], r["copy"]["file_bytes"]))
    check(sorted(os.listdir(new)) == ["data.mdb", "identity.key", "mesh.key"], "the copy: %r" % os.listdir(new))
    check(os.stat(new).st_mode & 0o777 == 0o700, "NEWDIR is private")
    check(vn_ok("id", "--data", new) == vn_ok("id", "--data", a), "the same identity")
    check(ml.dump(new) == ml.dump(a), "the same state")
    check(ml.status(new)["state_hash"] == ml.status(a)["state_hash"], "the same state hash")
    rc, out, err = vn("compact", "--data", a, "--copy", new)
    check(rc == 3 and "exists" in err, "--copy over an existing directory: exit 3, got %d %r" % (rc, err))
    da = m.start(a)
    rc, out, err = vn("compact", "--data", a, "--copy", os.path.join(m.root, "a-other"))
    check(rc == 3 and "daemon" in err, "--copy beside a daemon: exit 3, got %d %r" % (rc, err))
    check(not os.path.exists(os.path.join(m.root, "a-other")), "nothing made beside a daemon")
    da.stop()


def test_compact_while_replicating(m):
    """`compact` again and again while the daemon replicates a stream of
    writes: the daemon delivers everything, every write is purged exactly
    once (what the compacts purged adds up to the writes), nothing else is
    touched, and both nodes end with the same state."""
    a, b = m.init("a"), m.init("b")
    da = m.start(a, extra=["--purge-done-after", "off"])
    db = m.start(b, peers=[da.port])
    batches, per = 6, 500
    errors = []

    def writer():
        try:
            for k in range(batches):
                import_puts(a, per, "w%d" % k)
        except Exception as e:  # reported by the main thread
            errors.append(e)

    t = threading.Thread(target=writer)
    t.start()
    purged, compacts = 0, 0
    while t.is_alive() and compacts < 500:
        purged += compact(a)["outbox_purged"]
        compacts += 1
    t.join()
    during = purged
    check(not errors, "the imports: %r" % errors)
    total = batches * per
    ml.wait_converged([a, b], 120)
    ml.wait_until(lambda: delivered(a, total), 120, "every write to be acknowledged")
    purged += compact(a)["outbox_purged"]
    check(purged == total, "every write purged once: %d purged by %d compacts (%d while writing), %d written"
          % (purged, compacts + 1, during, total))
    print("     %d compacts while writing purged %d of %d" % (compacts, during, total))
    s = mesh_sink(a)
    check(s["done"] == 0 and s["pending"] == 0, "nothing left: %r" % s)
    check(da.alive() and db.alive(), "both daemons alive")
    check(ml.dump(a) == ml.dump(b), "the same state on both")
    db.stop()
    da.stop()


def sink_named(d, name):
    sinks = {s["name"]: s for s in ml.status(d)["sinks"]}
    check(name in sinks, "sink %s is listed: %r" % (name, sinks))
    return sinks[name]


def test_push_sink_purged(m):
    """Every sink, not only the mesh: an HTTP endpoint's entries, delivered
    by `push`, are purged by the daemon past N and by `compact`; `push`
    again delivers nothing twice (purged entries are never enqueued again)."""
    n = 2000
    rcv = subprocess.Popen([sys.executable, RECEIVER, "--port", "0"], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
    try:
        port = re.match(r"PORT (\d+)$", rcv.stdout.readline().strip())
        check(port is not None, "the receiver started")
        url = "http://127.0.0.1:%s/ingest" % port.group(1)
        a = m.init("a")
        import_puts(a, n, "h")
        r = json.loads(vn_ok("push", "--data", a, "--url", url))
        check(r["drained"] and r["delivered"] == n, "push delivered every write: %r" % r)
        check(sink_named(a, "http")["done"] == n, "the http sink holds them DONE")
        da = m.start(a, extra=["--purge-done-after", "500"])  # no peer: the mesh sink stays PENDING
        ml.wait_until(lambda: sink_named(a, "http")["done"] <= 500, 60, "the daemon to purge the http sink")
        check(sink_named(a, "http")["done"] == 500, "500 kept")
        check(sink_named(a, "default")["pending"] == n, "the mesh sink untouched: nothing delivered there")
        da.stop()
        c = compact(a)
        got = {x["name"]: x["purged"] for x in c["sinks"]}
        check(got == {"default": 0, "http": 500} and c["outbox_purged"] == 500, "compact: %r" % c)
        r = json.loads(vn_ok("push", "--data", a, "--url", url))
        check(r["drained"] and r["delivered"] == 0 and r["backfilled"] == 0, "nothing is sent twice: %r" % r)
        with urllib.request.urlopen(url.replace("/ingest", "/_stats"), timeout=30) as f:
            stats = json.loads(f.read())
        check(stats["ops_stored"] == n, "the receiver holds each write once: %r" % stats)
    finally:
        rcv.kill()
        rcv.wait()


if __name__ == "__main__":
    ml.main([
        ("daemon_purges_past_threshold", test_daemon_purges_past_threshold),
        ("compact_stopped_node", test_compact_stopped_node),
        ("compact_copy", test_compact_copy),
        ("compact_while_replicating", test_compact_while_replicating),
        ("push_sink_purged", test_push_sink_purged),
    ])
