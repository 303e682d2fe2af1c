"""End-to-end tests of vix-node's one-shot commands (everything but run and demo).

Usage: python3 test_cli.py PATH_TO_VIX_NODE [TEST...]
Every test has its own temp dir; nothing here waits on time.
"""
import base64
import json
import os
import re
import signal
import stat
import struct
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vnlib  # noqa: E402
from vnlib import HEX64, OP_ID_HEX  # noqa: E402

suite = vnlib.Suite()
LOCAL_COMMANDS = ["init", "mesh-key", "id", "put", "del", "incr", "get", "import", "retry-failed",
                  "dump", "status", "log"]
INT64_MAX, INT64_MIN = 2**63 - 1, -2**63


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


# ---- init, mesh-key, id ----

@suite.test
def test_init_new_and_again(t):
    n = t.node("a/b")  # parents are created too
    node_id = n.init()
    assert HEX64.match(node_id)
    t.expect(n.run("id"), 0, node_id + "\n")
    for f in ("identity.key", "mesh.key"):
        assert mode_of(os.path.join(n.data, f)) == 0o600, f
    with open(os.path.join(n.data, "mesh.key")) as f:
        mesh = f.read()
    assert HEX64.match(mesh.strip())
    n.ok("put", "x", "1")
    # Again: same identity, same mesh key, data kept.
    assert n.init() == node_id
    with open(os.path.join(n.data, "mesh.key")) as f:
        assert f.read() == mesh
    assert n.get("x") == "1"
    # Another directory: another identity.
    assert t.node("c").init() != node_id


@suite.test
def test_init_with_mesh_key(t):
    r1, r2 = t.run("mesh-key"), t.run("mesh-key")
    for r in (r1, r2):
        t.expect(r, 0)
        assert r.out.endswith("\n") and HEX64.match(r.out[:-1]), r
    assert r1.out != r2.out
    k1 = t.write("k1", r1.out, 0o600)
    k2 = t.write("k2", r2.out.upper(), 0o600)  # upper case hex is accepted
    n = t.node()
    node_id = n.init("--mesh-key", k1)
    stored = os.path.join(n.data, "mesh.key")
    with open(stored) as f:
        assert f.read() == r1.out
    # Again with another key: the key is replaced, the identity kept.
    assert n.init("--mesh-key", k2) == node_id
    with open(stored) as f:
        assert f.read().strip() == r2.out.strip().lower()
    assert mode_of(stored) == 0o600
    # A missing key file, a malformed one: exit 3, nothing changed. (One
    # others may read is accepted with a warning: test_mesh_key_file_others_may_read.)
    e = t.expect(n.run("init", "--mesh-key", t.path("nope")), 3, "")
    assert t.path("nope") in t.one_error_line(e, "init")
    e = t.expect(n.run("init", "--mesh-key", t.write("k4", "zz" * 32, 0o600)), 3)
    t.one_error_line(e, "init")
    with open(stored) as f:
        assert f.read().strip() == r2.out.strip().lower()
    # A fresh directory given a bad key is not created half-way.
    fresh = t.node("fresh")
    t.expect(fresh.run("init", "--mesh-key", t.path("k4")), 3)
    assert not os.path.exists(os.path.join(fresh.data, "identity.key"))


def sh(t, script, **env):
    """Run a shell script with the default umask 022 (as a new user's shell
    has), vix-node as $VN; return the CompletedProcess."""
    full = dict(os.environ, VN=t.exe, **env)
    return subprocess.run(["sh", "-c", "umask 022; " + script], capture_output=True, text=True, env=full,
                          timeout=vnlib.TIMEOUT_S)


def warning_lines(err, cmd, path):
    return [ln for ln in err.splitlines() if ln.startswith("vix-node %s: warning: %s" % (cmd, path))]


@suite.test
def test_mesh_key_file_others_may_read(t):
    """DESIGN.md's contract: `vix-node mesh-key > FILE` (mode 0644 under the
    default umask), then `init --mesh-key FILE`, works: one warning naming
    the file, and the copy in the data directory is 0600."""
    key = t.path("mesh.key")
    p = sh(t, '"$VN" mesh-key > "$KEY"', KEY=key)
    assert p.returncode == 0 and p.stderr == "", p
    assert mode_of(key) == 0o644
    with open(key) as f:
        text = f.read()
    n = t.node()
    r = n.run("init", "--mesh-key", key)
    t.expect(r, 0)
    assert HEX64.match(r.out.strip()), r
    line = t.one_error_line(r, "init")  # exactly one line on stderr: the warning
    assert warning_lines(r.err, "init", key) == [line], r
    assert "0644" in line and "chmod 600" in line, r
    stored = os.path.join(n.data, "mesh.key")
    assert mode_of(stored) == 0o600
    with open(stored) as f:
        assert f.read() == text
    assert mode_of(key) == 0o644  # the user's file is theirs: not touched
    n.ok("put", "a", "1")  # the data directory is whole
    assert n.get("a") == "1"
    # Group-readable and world-writable files too, each one warning; the content
    # rules stay: bad hex in a file others may read is still exit 3, no warning.
    for mode in (0o640, 0o666, 0o604):
        k = t.write("k%o" % mode, text, mode)
        r = t.expect(n.run("init", "--mesh-key", k), 0)
        assert len(warning_lines(r.err, "init", k)) == 1 and len(r.err.splitlines()) == 1, r
        assert ("%04o" % mode) in r.err, r
    bad = t.write("bad", "zz" * 32 + "\n", 0o644)
    e = t.expect(n.run("init", "--mesh-key", bad), 3, "")
    assert "warning" not in e.err and "not a mesh key" in t.one_error_line(e, "init"), e
    # A readable directory is not a key file, whatever its mode.
    os.mkdir(t.path("dir"), 0o755)
    t.expect(n.run("init", "--mesh-key", t.path("dir")), 3, "")
    # The data directory's own mesh.key stays strict (we made it 0600): exit 3.
    os.chmod(stored, 0o644)
    e = t.expect(n.run("get", "a"), 3, "")
    assert "chmod 600" in t.one_error_line(e, "get"), e
    os.chmod(stored, 0o600)
    # run --mesh-key FILE: used, one warning, the daemon starts and stops cleanly.
    log = t.path("run.log")
    with open(log, "w") as logf:
        proc = subprocess.Popen([t.exe, "run", "--data", n.data, "--listen", "127.0.0.1:0", "--mesh-key", key],
                                stdout=subprocess.DEVNULL, stderr=logf)
        try:
            deadline = time.monotonic() + vnlib.TIMEOUT_S
            while "event=listening" not in open(log).read():
                assert proc.poll() is None and time.monotonic() < deadline, open(log).read()
                time.sleep(0.02)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            rc = proc.wait(timeout=vnlib.TIMEOUT_S)
    text_log = open(log).read()
    assert rc == 0, text_log
    assert len(warning_lines(text_log, "run", key)) == 1, text_log
    assert text_log.count("warning: ") == 1, text_log


@suite.test
def test_mesh_key_file_private(t):
    """A 0600 key file: no warning, for init and the README's --out path."""
    key = t.path("mesh.key")
    p = sh(t, '"$VN" mesh-key --out "$KEY"', KEY=key)
    assert p.returncode == 0 and p.stdout == "" and p.stderr == "", p  # the secret is not printed
    assert mode_of(key) == 0o600
    with open(key) as f:
        text = f.read()
    assert text.endswith("\n") and HEX64.match(text[:-1]), text
    n = t.node()
    r = t.expect(n.run("init", "--mesh-key", key), 0)
    assert r.err == "", r
    with open(os.path.join(n.data, "mesh.key")) as f:
        assert f.read() == text
    # The README's steps, as a new user runs them (umask 022).
    m = t.node("readme")
    p = sh(t, '"$VN" mesh-key --out "$DIR/readme.key" && "$VN" init --data "$DIR/readme" --mesh-key "$DIR/readme.key"',
           DIR=t.tmp)
    assert p.returncode == 0 and p.stderr == "" and HEX64.match(p.stdout.strip()), p
    assert m.run("id").out == p.stdout


@suite.test
def test_mesh_key_out(t):
    """--out: created 0600 whatever the umask, never overwriting."""
    seen = set()
    for umask in ("000", "022", "077", "277"):
        key = t.path("k" + umask)
        p = sh(t, 'umask %s; "$VN" mesh-key --out "$KEY"' % umask, KEY=key)
        assert p.returncode == 0 and p.stdout == "" and p.stderr == "", p
        assert mode_of(key) == 0o600, (umask, oct(mode_of(key)))
        with open(key) as f:
            text = f.read()
        assert text.endswith("\n") and HEX64.match(text[:-1]), text
        seen.add(text)
    assert len(seen) == 4  # a new random key each time
    assert not [f for f in os.listdir(t.tmp) if ".tmp-" in f]  # no temporary file left
    # An existing file, whatever it holds, is never overwritten: exit 3, one line naming it.
    existing = t.write("existing", "precious\n", 0o644)
    for path in (existing, t.path("k022")):
        with open(path, "rb") as f:
            before = f.read()
        e = t.expect(t.run("mesh-key", "--out", path), 3, "")
        line = t.one_error_line(e, "mesh-key")
        assert path in line and "refusing to overwrite" in line, e
        with open(path, "rb") as f:
            assert f.read() == before
    assert mode_of(existing) == 0o644
    # A symlink (even a dangling one) is not followed.
    os.symlink(t.path("target"), t.path("link"))
    t.expect(t.run("mesh-key", "--out", t.path("link")), 3, "")
    assert not os.path.exists(t.path("target"))
    # A missing directory: exit 3; a directory name or an empty value: exit 2.
    e = t.expect(t.run("mesh-key", "--out", t.path("no", "such")), 3, "")
    t.one_error_line(e, "mesh-key")
    t.expect(t.run("mesh-key", "--out", t.tmp + "/"), 2, "")
    t.expect(t.run("mesh-key", "--out", ""), 2, "")
    t.expect(t.run("mesh-key", "--out"), 2, "")
    t.expect(t.run("mesh-key", "--out", t.path("a"), "--out", t.path("b")), 2, "")
    assert not os.path.exists(t.path("a")) and not os.path.exists(t.path("b"))
    h = t.expect(t.run("mesh-key", "--help"), 0)
    assert "--out FILE" in h.out and "600" in h.out, h


# ---- push --header-file ----

RECEIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "http_receiver.py")


def http_json(url):
    with urllib.request.urlopen(url, timeout=vnlib.TIMEOUT_S) as r:
        return json.loads(r.read())


@suite.test
def test_push_header_file(t):
    """Headers from a file reach the receiver; the secret is not in argv."""
    rcv = subprocess.Popen([sys.executable, RECEIVER, "--port", "0"], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
    try:
        m = re.match(r"PORT (\d+)$", rcv.stdout.readline().strip())
        assert m, "receiver did not start"
        base = "http://127.0.0.1:%s" % m.group(1)
        n = t.node()
        n.init()
        n.ok("put", "a", "1")
        n.ok("put", "b", "2")
        secret = "Bearer s3cret-" + "x" * 40
        hf = t.write("headers", "# the receiver's token\r\n\n  \nAuthorization: %s\r\n"
                                "X-Tenant: acme  \n# done\n" % secret, 0o600)
        r = n.run("push", "--url", base + "/ingest", "--header-file", hf, "--header", "X-Extra: 1")
        t.expect(r, 0)
        doc = r.json()
        assert doc["drained"] and doc["delivered"] == 2 and doc["failed"] == 0, r
        assert all(secret not in a for a in r.argv)
        stats = http_json(base + "/_stats")
        assert stats["ops_stored"] == 2, stats
        assert stats["authorization"] == secret, stats
        headers = {k.lower(): v for k, v in stats["headers"].items()}
        assert headers.get("x-tenant") == "acme" and headers.get("x-extra") == "1", stats
    finally:
        rcv.kill()
        rcv.wait()


@suite.test
def test_push_header_file_errors(t):
    """A malformed line: exit 2 naming its line; nothing is pushed (no receiver
    is needed: the file is read before anything else)."""
    n = t.node()
    n.init()
    n.ok("put", "a", "1")
    url = "http://127.0.0.1:9/ingest"  # never reached
    cases = [
        ("# c\n\nAuthorization: Bearer x\nnot a header\n", "line 4"),
        ("X-Ok: 1\n: empty name\n", "line 2"),
        ("Bad Name: 1\n", "line 1"),
        ("X-A: 1\r\n\r\nContent-Type: text/plain\r\n", "line 3"),
        ("X-A: 1\nX-B: a\x01b\n", "line 2"),
        ("X-A: 1\nX-B: a\x00b\n", "line 2"),
        ("".join("X-H%d: v\n" % i for i in range(33)), "line 33"),
        ("X-Big: " + "v" * 9000 + "\n", "line 1"),
    ]
    for i, (content, where) in enumerate(cases):
        hf = t.write("h%d" % i, content, 0o600)
        e = t.expect(n.run("push", "--url", url, "--header-file", hf), 2, "")
        line = t.one_error_line(e, "push")
        assert hf in line and where in line, (where, e)
    # 33 headers in all counting --header ones: refused too.
    hf = t.write("h32", "".join("X-H%d: v\n" % i for i in range(32)), 0o600)
    t.expect(n.run("push", "--url", url, "--header-file", hf, "--header", "X-More: 1"), 2, "")
    e = t.expect(n.run("push", "--url", url, "--header-file", t.path("missing")), 3, "")
    assert t.path("missing") in t.one_error_line(e, "push"), e
    t.expect(n.run("push", "--url", url, "--header-file", hf, "--header-file", hf), 2, "")
    t.expect(n.run("push", "--url", url, "--header-file"), 2, "")
    big = t.write("big", "#" * (600 * 1024), 0o600)
    t.expect(n.run("push", "--url", url, "--header-file", big), 2, "")
    assert n.status()["sinks"] == [] or all(s["name"] != "http" for s in n.status()["sinks"])
    h = t.expect(t.run("push", "--help"), 0)
    assert "--header-file FILE" in h.out and "process list" in h.out, h


@suite.test
def test_init_refuses_foreign_dir(t):
    d = t.path("foreign")
    os.mkdir(d)
    t.write("foreign/notes.txt", "hello")
    e = t.expect(t.run("init", "--data", d), 3, "")
    assert d in t.one_error_line(e, "init")
    assert sorted(os.listdir(d)) == ["notes.txt"]
    # A plain file where the directory should be.
    f = t.write("file", "x")
    t.expect(t.run("init", "--data", f), 3, "")
    # An empty existing directory is fine.
    os.mkdir(t.path("empty"))
    assert HEX64.match(t.expect(t.run("init", "--data", t.path("empty")), 0).out.strip())


@suite.test
def test_mesh_key_and_id_args(t):
    t.expect(t.run("mesh-key", "extra"), 2, "")
    t.expect(t.run("mesh-key", "--data", t.tmp), 2, "")
    t.expect(t.run("id"), 2, "", "missing --data")
    n = t.node()
    n.init()
    t.expect(n.run("id", "extra"), 2, "")


# ---- put, get, del, incr ----

@suite.test
def test_put_get_del(t):
    n = t.node()
    n.init()
    ids = set()
    for target, value in [("colour", "blue"), ("colour", "green"), ("greeting", "héllo wörld ✓"),
                          ("spaces in target", "a b\tc"), ("empty", ""), ("-dash", "--val")]:
        args = ["--", target, value] if target.startswith("-") else [target, value]
        r = n.ok("put", *args)
        assert r.out.endswith("\n") and OP_ID_HEX.match(r.out[:-1]), r
        ids.add(r.out)
        assert n.get(target) == value
    assert len(ids) == 6  # every write has its own op id
    assert n.get("colour") == "green"
    t.expect(n.run("get", "nothing-here"), 1, "")
    r = n.ok("del", "colour")
    assert OP_ID_HEX.match(r.out.strip())
    t.expect(n.run("get", "colour"), 1, "")
    t.expect(n.run("del", "never-written"), 0)  # a tombstone for nothing is still a write
    n.ok("put", "colour", "red")
    assert n.get("colour") == "red"
    # Protocol limits: target <= 1 KiB, value <= 64 KiB.
    n.ok("put", "t" * 1024, "v" * 1000)
    e = t.expect(n.run("put", "t" * 1025, "v"), 2, "")
    t.one_error_line(e, "put")
    t.expect(n.run("put", "big", "v" * (64 * 1024 + 1)), 2, "")
    n.ok("put", "big", "v" * (64 * 1024))
    assert n.get("big") == "v" * 65536


@suite.test
def test_incr(t):
    n = t.node()
    n.init()
    n.ok("incr", "c", "5")
    n.ok("incr", "c", "-7")
    assert n.get("c") == "-2"
    n.ok("put", "x", "5")
    n.ok("incr", "x", "3")
    assert n.get("x") == "8"
    n.ok("del", "x")
    n.ok("incr", "x", "1")
    assert n.get("x") == "1"  # as in Redis
    n.ok("incr", "lo", str(INT64_MIN))
    n.ok("incr", "hi", str(INT64_MAX))
    assert n.get("lo") == str(INT64_MIN) and n.get("hi") == str(INT64_MAX)
    n.ok("incr", "hi", "1")
    assert n.get("hi") == str(INT64_MIN)  # two's complement wrap, the same on every node
    n.ok("put", "word", "abc")
    n.ok("incr", "word", "2")
    assert n.get("word") == "2"  # a base that is not a number counts 0
    lsn = n.status()["lsn"]
    for bad in ["9223372036854775808", "-9223372036854775809", "99999999999999999999", "1.5", "1e3",
                "+3", "", " 1", "1 ", "0x10", "abc", "-", "--5"]:
        e = t.expect(n.run("incr", "--", "c", bad), 2, "")
        t.one_error_line(e, "incr")
    assert n.status()["lsn"] == lsn  # nothing written
    assert n.get("c") == "-2"
    # Canonical form: "007" is stored as "7".
    n.ok("incr", "z", "007")
    assert n.log()[-1]["value"] == "7"


@suite.test
def test_idempotency_keys(t):
    n = t.node()
    n.init()
    first = n.ok("put", "a", "1", "--idem", "k1").out
    lsn = n.status()["lsn"]
    again = n.ok("put", "a", "1", "--idem", "k1").out
    assert again == first
    assert n.status()["lsn"] == lsn  # nothing written
    # Other content, or another kind, under the same key: conflict, exit 1, nothing written.
    e = t.expect(n.run("put", "a", "2", "--idem", "k1"), 1, "")
    assert "idempotency" in t.one_error_line(e, "put")
    t.expect(n.run("del", "a", "--idem", "k1"), 1, "")
    assert n.get("a") == "1" and n.status()["lsn"] == lsn
    # A retried incr counts once, also spelt differently.
    i1 = n.ok("incr", "ctr", "10", "--idem", "k2").out
    i2 = n.ok("incr", "ctr", "010", "--idem=k2").out
    assert i1 == i2 and n.get("ctr") == "10"
    t.expect(n.run("incr", "ctr", "11", "--idem", "k2"), 1, "")
    assert n.get("ctr") == "10"
    d1 = n.ok("del", "a", "--idem", "k3").out
    assert n.ok("del", "a", "--idem", "k3").out == d1
    # Key bounds.
    t.expect(n.run("put", "a", "1", "--idem", ""), 2, "")
    t.expect(n.run("put", "a", "1", "--idem", "k" * 257), 2, "")
    n.ok("put", "a", "1", "--idem", "k" * 256)


# ---- import ----

def jl(*objs):
    return "".join(json.dumps(o) + "\n" for o in objs)


@suite.test
def test_import_file_and_stdin(t):
    n = t.node()
    n.init()
    text = (jl({"kind": "put", "target": "a", "value": "1"},
               {"kind": "incr", "target": "n", "value": 5},
               {"kind": "incr", "target": "n", "value": "-2"},
               {"kind": "put", "target": "b", "value": "x", "idem": "i1"},
               {"kind": "put", "target": "b", "value": "x", "idem": "i1"})  # duplicate: no new op
            + "\n   \r\n"  # blank lines are skipped
            + '{"kind":"put","target":"esc","value":"q\\"b\\\\s\\/n\\nt\\tu\\u00e9\\ud83d\\ude00\\u0000"}\r\n'
            + '  { "value" : "v" , "target" : "sp" , "kind" : "put" }  \n'
            + jl({"kind": "del", "target": "a"}, {"kind": "del", "target": "gone", "value": None},
                 {"kind": "put", "target_b64": base64.b64encode(b"\xff\xfe").decode(),
                  "value_b64": base64.b64encode(b"\x00\x80bin").decode()})
            + '{"kind":"incr","target":"n","value":-9223372036854775808}')  # last line without newline
    f = t.write("in.jsonl", text)
    t.expect(n.run("import", f), 0, "11\n")  # records committed, the duplicate included
    assert n.get("a") is None and n.get("n") == str(5 - 2 + INT64_MIN)
    assert n.get("esc") == 'q"b\\s/n\nt\tué\U0001F600\x00'
    assert n.get("sp") == "v" and n.get("b") == "x"
    assert n.status()["lsn"] == 10
    d = {e.get("target", e.get("target_b64")): e for e in n.dump()}
    assert d[base64.b64encode(b"\xff\xfe").decode()]["value_b64"] == base64.b64encode(b"\x00\x80bin").decode()
    # Standard input, with no FILE and with "-".
    t.expect(n.run("import", input=jl({"kind": "put", "target": "s1", "value": "1"})), 0, "1\n")
    t.expect(n.run("import", "-", input=jl({"kind": "put", "target": "s2", "value": "2"})), 0, "1\n")
    t.expect(n.run("import", input=""), 0, "0\n")
    assert n.get("s1") == "1" and n.get("s2") == "2"
    t.expect(n.run("import", t.path("missing.jsonl")), 2, "")
    t.expect(n.run("import", f, "extra"), 2, "")


@suite.test
def test_import_group_commit_and_bad_line(t):
    n = t.node()
    n.init()
    good = "".join(json.dumps({"kind": "incr", "target": "k%d" % (i % 7), "value": 1}) + "\n" for i in range(2500))
    f = t.write("in.jsonl", good + '{"kind": "put", "target": "x"}\n' + jl({"kind": "put", "target": "after",
                                                                             "value": "1"}))
    r = t.expect(n.run("import", f), 2, "2500\n")
    assert "line 2501:" in t.one_error_line(r, "import") and "value" in r.err
    assert n.status()["lsn"] == 2500
    assert sum(int(n.get("k%d" % i)) for i in range(7)) == 2500
    assert n.get("after") is None
    log = n.log("--from", "2490")
    assert [e["lsn"] for e in log] == list(range(2490, 2501))


BAD_LINES = [
    ("not json", "not a JSON object"),
    ('{"kind": "put", "target": "a", "value": "1"} x', "trailing"),
    ('{"kind": "put", "target": "a", "value": "1"', "expected"),
    ('{"kind": "frob", "target": "a", "value": "1"}', "unknown kind"),
    ('{"kind": "mesh.invite", "target": "mesh", "value": "1"}', "kind 'mesh.invite' is reserved for membership"),
    ('{"kind": "mesh.", "target": "a", "value": "1"}', "kind 'mesh.' is reserved for membership"),
    ('{"kind": "put", "value": "1"}', "missing field 'target'"),
    ('{"target": "a", "value": "1"}', "missing field 'kind'"),
    ('{"kind": "put", "target": "a"}', "missing field 'value'"),
    ('{"kind": "incr", "target": "a", "value": 1.5}', "64-bit"),
    ('{"kind": "incr", "target": "a", "value": 1e3}', "64-bit"),
    ('{"kind": "incr", "target": "a", "value": 9223372036854775808}', "64-bit"),
    ('{"kind": "incr", "target": "a", "value": "+1"}', "64-bit"),
    ('{"kind": "incr", "target": "a"}', "missing field 'value'"),
    ('{"kind": "del", "target": "a", "value": "x"}', "del takes no value"),
    ('{"kind": "put", "target": "a", "value": 5}', "must be a string"),
    ('{"kind": "put", "target": "a", "value": "1", "extra": 1}', "unknown field 'extra'"),
    ('{"kind": "put", "target": "a", "value": "1", "value": "2"}', "duplicate"),
    ('{"kind": "put", "target": "a", "value": {"x": 1}}', "unsupported"),
    ('{"kind": "put", "target": "a", "value": true}', "unsupported"),
    ('{"kind": "put", "target": "a", "value": "\\ud800"}', "surrogate"),
    ('{"kind": "put", "target": "a", "value": "\\udc00"}', "surrogate"),
    ('{"kind": "put", "target": "a", "value": "\\x41"}', "escape"),
    ('{"kind": "put", "target": "a", "value": "tab\there"}', "control character"),
    ('{"kind": "put", "target": "a", "value": "1", "idem": ""}', "idem"),
    ('{"kind": "put", "target_b64": "!!", "value": "1"}', "base64"),
    ('{"kind": "put", "target": "a", "target_b64": "YQ==", "value": "1"}', "both"),
    ('["put", "a", "1"]', "not a JSON object"),
    (json.dumps({"kind": "put", "target": "t" * 1025, "value": "1"}), "limit of 1024"),
    (json.dumps({"kind": "put", "target": "a", "value": "v" * 65537}), "limit of 65536"),
    (b'{"kind": "put", "target": "a", "value": "\xff"}', "UTF-8"),
    (b'{"kind": "put", "target": "a", "value": "\xc0\x80"}', "UTF-8"),
    ("x" * (1024 * 1024 + 1), "longer than"),
]


@suite.test
def test_import_bad_lines(t):
    n = t.node()
    n.init()
    lsn = 0
    for i, (bad, why) in enumerate(BAD_LINES):
        bad = bad if isinstance(bad, bytes) else bad.encode("utf-8")
        ok = jl({"kind": "put", "target": "ok%d" % i, "value": "1"}).encode() * 2
        f = t.write("bad%d.jsonl" % i, ok + bad + b"\n" + ok)
        r = t.expect(n.run("import", f), 2, "2\n")
        line = t.one_error_line(r, "import")
        assert "line 3: " in line and why in line, (why, r)
        lsn += 2
        assert n.status()["lsn"] == lsn, r  # the lines before it, and only those
    assert n.get("ok0") == "1"


@suite.test
def test_import_idempotency_conflict(t):
    n = t.node()
    n.init()
    lines = [{"kind": "put", "target": "t%d" % i, "value": "v", "idem": "key%d" % i} for i in range(10)]
    lines.append({"kind": "put", "target": "t1", "value": "v", "idem": "key1"})  # same: fine
    lines.append({"kind": "put", "target": "t3", "value": "OTHER", "idem": "key3"})  # line 12: conflict
    lines.append({"kind": "put", "target": "late", "value": "v"})
    r = t.expect(n.run("import", t.write("c.jsonl", jl(*lines))), 1, "11\n")
    assert "line 12:" in t.one_error_line(r, "import") and "idempotency" in r.err
    assert n.status()["lsn"] == 10 and n.get("t3") == "v" and n.get("late") is None
    # Against keys written by an earlier command, too.
    n.ok("put", "z", "1", "--idem", "zz")
    r = t.expect(n.run("import", input=jl({"kind": "put", "target": "z", "value": "2", "idem": "zz"})), 1, "0\n")
    assert "line 1:" in r.err


# ---- dump, status, log ----

@suite.test
def test_dump(t):
    n = t.node()
    node_id = n.init()
    n.ok("put", "b", "2")
    n.ok("put", "a", "1")
    n.ok("incr", "c", "4")
    n.ok("put", "e", "gone")
    n.ok("del", "e")
    n.ok("put", "ctl", 'q"b\\s\n\t\x01\x7fé')
    f = t.write("bin.jsonl", jl({"kind": "put", "target": "bin", "value_b64": base64.b64encode(b"a\xffb").decode()},
                                {"kind": "put", "target_b64": base64.b64encode(b"\xfe").decode(), "value": "t"}))
    n.ok("import", f)
    d = n.dump()
    targets = [e.get("target") for e in d]
    assert targets == ["a", "b", "bin", "c", "ctl", None], targets  # byte order: 0xfe last
    for e in d:
        assert set(e) == {"target" if "target" in e else "target_b64", "kind",
                          "value" if "value" in e else "value_b64", "origin", "hlc"}, e
        assert e["origin"] == node_id and isinstance(e["hlc"], int) and 0 < e["hlc"] < 2**64
    by = {e.get("target"): e for e in d}
    assert by["a"]["kind"] == "put" and by["a"]["value"] == "1"
    assert by["c"]["kind"] == "counter" and by["c"]["value"] == "4"
    assert by["ctl"]["value"] == 'q"b\\s\n\t\x01\x7fé'
    assert base64.b64decode(by["bin"]["value_b64"]) == b"a\xffb"
    assert base64.b64decode(d[-1]["target_b64"]) == b"\xfe"
    # origin and hlc are those of the last counted operation on the target.
    last = {e["target"]: e for e in n.log() if "target" in e}
    for name in ("a", "b", "c", "ctl"):
        assert by[name]["hlc"] == last[name]["hlc"], name
    # Tombstones only when asked.
    tomb = n.dump("--tombstones")
    assert [e.get("target") for e in tomb] == ["a", "b", "bin", "c", "ctl", "e", None]
    e = [x for x in tomb if x.get("target") == "e"][0]
    assert e["kind"] == "del" and e["value"] is None and e["hlc"] == last["e"]["hlc"]
    # Text form: sorted lines target<TAB>value, one per target, escaped.
    txt = n.ok("dump").out_bytes.decode("utf-8")
    assert txt.splitlines() == ["a\t1", "b\t2", "bin\ta\\xffb", "c\t4", 'ctl\tq"b\\\\s\\n\\t\\x01\\x7fé',
                                "\\xfe\tt"], txt
    assert "e\t(deleted)" in n.ok("dump", "--tombstones").out
    # An empty state.
    m = t.node("empty")
    m.init()
    t.expect(m.run("dump", "--json"), 0, "[]\n")
    t.expect(m.run("dump"), 0, "")


@suite.test
def test_status(t):
    n = t.node()
    node_id = n.init()
    s = n.status()
    for field in ("node_id", "seq", "lsn", "state_hash", "vv", "outbox", "peers"):
        assert field in s, field
    assert s["node_id"] == node_id and s["seq"] == 0 and s["lsn"] == 0 and s["vv"] == {}
    assert s["state_hash"] == "0" * 64 and isinstance(s["peers"], list)
    assert s["outbox"] == {"pending": 0, "inflight": 0, "done": 0, "failed": 0}
    for i in range(3):
        n.ok("put", "k%d" % i, "v")
    n.ok("incr", "c", "1", "--idem", "x")
    n.ok("incr", "c", "1", "--idem", "x")  # duplicate: no outbox entry
    s = n.status()
    assert s["seq"] == 4 and s["lsn"] == 4 and s["vv"] == {node_id: 4}
    assert HEX64.match(s["state_hash"]) and s["state_hash"] != "0" * 64
    # No daemon: every local write waits in the outbox.
    assert s["outbox"] == {"pending": 4, "inflight": 0, "done": 0, "failed": 0}
    r = n.ok("status")
    assert node_id in r.out and "pending" in r.out
    # status only reads: the store's file is the same byte for byte after it
    # (it once switched the mesh sink from ranges-only to claimed).
    with open(os.path.join(n.data, "data.mdb"), "rb") as f:
        before = f.read()
    n.ok("status", "--json")
    n.ok("retry-failed")
    with open(os.path.join(n.data, "data.mdb"), "rb") as f:
        assert f.read() == before, "status or retry-failed wrote to the store"


@suite.test
def test_log(t):
    n = t.node()
    node_id = n.init()
    t.expect(n.run("log", "--json"), 0, "")
    n.ok("put", "a", "1")
    n.ok("incr", "b", "-3")
    n.ok("del", "a")
    n.ok("put", "bin", "x")
    log = n.log()
    assert [e["lsn"] for e in log] == [1, 2, 3, 4]
    assert [e["seq"] for e in log] == [1, 2, 3, 4]
    assert [e["kind"] for e in log] == ["put", "incr", "del", "put"]
    assert [e["value"] for e in log] == ["1", "-3", "", "x"]
    hlcs = [e["hlc"] for e in log]
    assert hlcs == sorted(hlcs) and len(set(hlcs)) == 4  # strictly increasing local clock
    for e in log:
        for field in ("lsn", "id", "origin", "seq", "hlc", "kind", "target", "value"):
            assert field in e, (field, e)
        assert e["origin"] == node_id and OP_ID_HEX.match(e["id"])
    ids = [n.ok("put", "q", "1").out.strip()]
    assert n.log("--from", "5")[0]["id"] == ids[0]
    assert [e["lsn"] for e in n.log("--from", "3")] == [3, 4, 5]
    assert n.log("--from", "0") == n.log()
    t.expect(n.run("log", "--json", "--from", "99"), 0, "")
    t.expect(n.run("log", "--json", "--from", str(2**64 - 1)), 0, "")
    for bad in ("-1", "x", "1.0", str(2**64), ""):
        t.expect(n.run("log", "--from", bad), 2, "")
    txt = n.ok("log").lines()
    assert len(txt) == 5 and txt[0].split("\t")[0] == "1" and txt[0].endswith("put\ta\t1")


@suite.test
def test_retry_failed(t):
    n = t.node()
    n.init()
    t.expect(n.run("retry-failed"), 0, "0\n")
    n.ok("put", "a", "1")
    # The mesh push never gives up (DESIGN.md): nothing is FAILED without a permanent rejection.
    t.expect(n.run("retry-failed"), 0, "0\n")
    assert n.status()["outbox"] == {"pending": 1, "inflight": 0, "done": 0, "failed": 0}
    t.expect(n.run("retry-failed", "x"), 2, "")


# ---- storage errors (exit 3) ----

DIR_COMMANDS = [("id",), ("put", "a", "1"), ("del", "a"), ("incr", "a", "1"), ("get", "a"), ("import",),
                ("retry-failed",), ("dump",), ("status",), ("log",)]


def expect_storage_error(t, data, what):
    for cmd in DIR_COMMANDS:
        r = t.run(cmd[0], "--data", data, *cmd[1:], input="")
        t.expect(r, 3, "")
        line = t.one_error_line(r, cmd[0])
        assert what in line, (what, r)


@suite.test
def test_missing_and_foreign_dirs(t):
    missing = t.path("missing")
    expect_storage_error(t, missing, missing)
    assert not os.path.exists(missing)  # nothing but init creates a data directory
    foreign = t.path("foreign")
    os.mkdir(foreign)
    t.write("foreign/x", "hello")
    expect_storage_error(t, foreign, "not a vixsync data directory")
    assert os.listdir(foreign) == ["x"]
    expect_storage_error(t, t.write("plain", "x"), "not a directory")


@suite.test
def test_store_of_another_format_names_both_versions(t):
    """A store written before op-id v2 (store format 2: 16-byte op ids) is
    refused by every command, with one line naming both formats, and left
    as it was (formats 5 and 6 are upgraded on open: test_store.c)."""
    n = t.node()
    n.init("--mesh-key", t.write("mesh.key", t.run("mesh-key").out, 0o600))
    n.ok("put", "k", "v")
    path = os.path.join(n.data, "data.mdb")
    with open(path, "rb") as f:
        data = f.read()
    # meta["vixsync"] = format u32le: in an LMDB leaf node the value follows the key.
    now = b"vixsync" + struct.pack("<I", 7)
    assert data.count(now) >= 1, "store format 7 not found in data.mdb"
    for old, word in ((4, "an older"), (8, "a newer")):
        patched = data.replace(now, b"vixsync" + struct.pack("<I", old))
        with open(path, "wb") as f:
            f.write(patched)
        for cmd in DIR_COMMANDS + [("run", "--listen", "127.0.0.1:0"), ("init",)]:
            r = t.run(cmd[0], "--data", n.data, *cmd[1:], input="")
            t.expect(r, 3, "")
            line = t.one_error_line(r, cmd[0])
            want = "store format %d, this build reads 7 (written by %s vixsync" % (old, word)
            assert want in line, (want, r)
        with open(path, "rb") as f:
            assert f.read() == patched  # nothing written
    with open(path, "wb") as f:
        f.write(data)
    assert n.get("k") == "v"


@suite.test
def test_broken_key_files(t):
    n = t.node()
    n.init()
    n.ok("put", "a", "1")
    ident = os.path.join(n.data, "identity.key")
    mesh = os.path.join(n.data, "mesh.key")
    with open(ident, "rb") as f:
        good_ident = f.read()
    with open(mesh, "rb") as f:
        good_mesh = f.read()

    def restore():
        for p, data in ((ident, good_ident), (mesh, good_mesh)):
            if os.path.isdir(p):
                os.rmdir(p)
            with open(p, "wb") as f:
                f.write(data)
            os.chmod(p, 0o600)
        assert n.get("a") == "1"

    # A flipped hex digit in the secret key: corrupt.
    flipped = bytearray(good_ident)
    i = good_ident.index(b"\n") + 5
    flipped[i] = ord("0") if flipped[i] != ord("0") else ord("1")
    with open(ident, "wb") as f:
        f.write(bytes(flipped))
    expect_storage_error(t, n.data, "identity.key")
    restore()
    os.chmod(ident, 0o644)  # a secret others may read
    expect_storage_error(t, n.data, "chmod 600")
    restore()
    os.unlink(mesh)
    expect_storage_error(t, n.data, "mesh.key")
    os.mkdir(mesh)  # unreadable as a key: a directory
    expect_storage_error(t, n.data, "mesh.key")
    restore()
    with open(mesh, "w") as f:
        f.write("not a key\n")
    expect_storage_error(t, n.data, "mesh.key")
    restore()
    os.chmod(mesh, 0o640)
    expect_storage_error(t, n.data, "chmod 600")
    restore()
    # init again repairs nothing it should not: a corrupt identity stays refused.
    with open(ident, "wb") as f:
        f.write(bytes(flipped))
    t.expect(n.run("init"), 3, "")
    with open(ident, "rb") as f:
        assert f.read() == bytes(flipped)  # never overwritten
    restore()
    # The store's file gone: exit 3, not a silently fresh store.
    os.rename(os.path.join(n.data, "data.mdb"), t.path("saved.mdb"))
    expect_storage_error(t, n.data, "data.mdb")
    os.rename(t.path("saved.mdb"), os.path.join(n.data, "data.mdb"))
    assert n.get("a") == "1"


@suite.test
def test_full_store(t):
    n = t.node()
    small = {"VIX_NODE_MAP_BYTES": str(512 * 1024)}
    r = t.run("init", "--data", n.data, env=small)
    t.expect(r, 0)
    value = "v" * 60000
    rc, i = 0, 0
    while rc == 0 and i < 100:
        r = n.run("put", "k%d" % i, value, env=small)
        rc, i = r.rc, i + 1
    t.expect(r, 3, "", "full")
    t.one_error_line(r, "put")
    lsn = n.status()["lsn"]
    assert lsn == i - 1 and n.get("k0") == value  # the failed write changed nothing
    r = n.run("import", env=small, input=jl({"kind": "put", "target": "more", "value": value}))
    t.expect(r, 3, "0\n", "full")
    n.ok("put", "more", value)  # the default map is larger
    assert n.status()["lsn"] == lsn + 1
    t.expect(n.run("get", "k0", env={"VIX_NODE_MAP_BYTES": "12kb"}), 2, "")


# ---- the command line ----

@suite.test
def test_bad_arguments(t):
    n = t.node()
    n.init()
    cases = [
        ("frobnicate",), ("put", "--data", n.data, "a"), ("put", "--data", n.data, "a", "1", "extra"),
        ("put", "a", "1"), ("put", "--data"), ("put", "--data", n.data, "--data", n.data, "a", "1"),
        ("put", "--data", n.data, "a", "1", "--json"), ("dump", "--data", n.data, "--from", "1"),
        ("dump", "--data", n.data, "--json=yes"), ("get", "--data", n.data), ("del", "--data", n.data),
        ("incr", "--data", n.data, "a"), ("status", "--data", n.data, "--bogus"), ("log", "--data", n.data, "x"),
        ("init",), ("init", "--data", ""), ("get", "--data", n.data, "a", "b"), ("import", "--data", n.data, "a", "b"),
    ]
    for args in cases:
        r = t.run(*args)
        t.expect(r, 2, "")
        assert len(r.err.splitlines()) == 1, r
    t.expect(t.run(), 2, "")
    # "--" ends the options; "-5" is a value, not an option; --opt=value works.
    n.ok("put", "--", "--data", "x")
    t.expect(n.run("get", "--", "--data"), 0, "x\n")
    n.ok("incr", "neg", "-5")
    t.expect(t.run("get", "--data=" + n.data, "neg"), 0, "-5\n")
    assert n.status()["lsn"] == 2


@suite.test
def test_help(t):
    top = t.expect(t.run("--help"), 0)
    t.expect(t.run("-h"), 0, top.out)
    for cmd in LOCAL_COMMANDS:
        assert "\n  %s " % cmd in top.out or "\n  %s\n" % cmd in top.out, cmd
        for flag in ("--help", "-h"):
            r = t.expect(t.run(cmd, flag), 0)
            assert r.out.startswith("usage: vix-node %s" % cmd) and r.err == "", r
        # Help wins over whatever else is on the line.
        t.expect(t.run(cmd, "--bogus", "x", "--help"), 0)
    # After "--", "-h" is an argument.
    n = t.node()
    n.init()
    n.ok("put", "--", "h", "-h")
    assert n.get("h") == "-h"


if __name__ == "__main__":
    sys.exit(suite.main(sys.argv))
