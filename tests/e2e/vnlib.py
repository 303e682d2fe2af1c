"""Helpers shared by the end-to-end tests of vix-node (python3 standard library only).

A test file does:

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import vnlib
    suite = vnlib.Suite()

    @suite.test
    def test_something(t):          # t: a vnlib.Case, with its own temp dir
        node = t.node("a")          # a data directory <tmp>/a (not yet initialized)
        node.init()
        t.expect(node.run("put", "x", "1"), 0)

    sys.exit(suite.main(sys.argv))  # argv[1] = path to vix-node; argv[2:] = test names (optional)
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import traceback

HEX64 = re.compile(r"^[0-9a-f]{64}$")
OP_ID_HEX = re.compile(r"^[0-9a-f]{48}$")  # 24-byte op ids (include/vixsync/op.h, op-id v2)
TIMEOUT_S = 60  # per command: generous for sanitizer builds; tests never wait on time otherwise


class Result:
    """One finished command: rc, stdout/stderr as bytes and as text."""

    def __init__(self, argv, rc, out, err):
        self.argv, self.rc, self.out_bytes, self.err_bytes = argv, rc, out, err
        self.out = out.decode("utf-8", "surrogateescape")
        self.err = err.decode("utf-8", "surrogateescape")

    def json(self):
        """stdout as one JSON document."""
        return json.loads(self.out)

    def json_lines(self):
        """stdout as JSON lines (one object per non-empty line)."""
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]

    def lines(self):
        return self.out.splitlines()

    def __repr__(self):
        return "$ %s\n-> rc %d\n-- stdout:\n%s\n-- stderr:\n%s" % (
            " ".join(repr(a) if isinstance(a, str) else repr(a) for a in self.argv),
            self.rc, self.out[:2000], self.err[:2000])


def run(exe, *args, input=None, env=None, timeout=TIMEOUT_S):
    """Run `exe args...` to completion. input: bytes or str for stdin (else
    stdin is empty). env: extra environment variables."""
    argv = [exe] + [str(a) if not isinstance(a, bytes) else a for a in args]
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    if isinstance(input, str):
        input = input.encode("utf-8")
    p = subprocess.run(argv, input=input if input is not None else b"", stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout, env=full_env)
    return Result(argv[1:], p.returncode, p.stdout, p.stderr)


class Node:
    """A data directory driven through one-shot commands."""

    def __init__(self, exe, data):
        self.exe, self.data = exe, data

    def run(self, cmd, *args, **kw):
        """vix-node CMD --data DIR ARGS..."""
        return run(self.exe, cmd, "--data", self.data, *args, **kw)

    def init(self, *args):
        r = run(self.exe, "init", "--data", self.data, *args)
        if r.rc != 0 or not HEX64.match(r.out.strip()):
            raise AssertionError("init failed:\n%r" % r)
        return r.out.strip()

    def ok(self, cmd, *args, **kw):
        """Run and require exit 0; return the Result."""
        r = self.run(cmd, *args, **kw)
        if r.rc != 0:
            raise AssertionError("expected exit 0:\n%r" % r)
        return r

    def status(self):
        return self.ok("status", "--json").json()

    def dump(self, *args):
        return self.ok("dump", "--json", *args).json()

    def log(self, *args):
        return self.ok("log", "--json", *args).json_lines()

    def get(self, target):
        """The value (text) or None when absent (exit 1)."""
        r = self.run("get", target)
        if r.rc == 1:
            if r.out_bytes:
                raise AssertionError("get of an absent target printed something:\n%r" % r)
            return None
        if r.rc != 0:
            raise AssertionError("get failed:\n%r" % r)
        assert r.out.endswith("\n"), r
        return r.out[:-1]


class Case:
    """What a test gets: its own temporary directory and the program."""

    def __init__(self, exe, tmp):
        self.exe, self.tmp = exe, tmp

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def node(self, name="node"):
        return Node(self.exe, self.path(name))

    def run(self, *args, **kw):
        return run(self.exe, *args, **kw)

    def write(self, name, data, mode=None):
        """Write a file under the temp dir (str or bytes); return its path."""
        p = self.path(name)
        with open(p, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        if mode is not None:
            os.chmod(p, mode)
        return p

    @staticmethod
    def expect(result, rc, out=None, err=None):
        """Require exit code rc; out: exact stdout text; err: a substring of stderr."""
        if result.rc != rc:
            raise AssertionError("expected exit %d:\n%r" % (rc, result))
        if out is not None and result.out != out:
            raise AssertionError("expected stdout %r:\n%r" % (out, result))
        if err is not None and err not in result.err:
            raise AssertionError("expected %r in stderr:\n%r" % (err, result))
        return result

    @staticmethod
    def one_error_line(result, cmd):
        """stderr is exactly one line 'vix-node CMD: ...'."""
        lines = result.err.splitlines()
        if len(lines) != 1 or not lines[0].startswith("vix-node %s: " % cmd):
            raise AssertionError("expected one 'vix-node %s: ...' line on stderr:\n%r" % (cmd, result))
        return lines[0]


class Suite:
    """A list of tests, each run in a fresh temporary directory."""

    def __init__(self):
        self.tests = []

    def test(self, fn):
        self.tests.append(fn)
        return fn

    def main(self, argv):
        if len(argv) < 2:
            print("usage: %s PATH_TO_VIX_NODE [TEST...]" % argv[0], file=sys.stderr)
            return 2
        exe = os.path.abspath(argv[1])
        wanted = set(argv[2:])
        failed = []
        ran = 0
        for fn in self.tests:
            if wanted and fn.__name__ not in wanted:
                continue
            tmp = tempfile.mkdtemp(prefix="vn-e2e-")
            ran += 1
            try:
                fn(Case(exe, tmp))
                print("PASS %s" % fn.__name__)
            except Exception:  # report every failure, then go on
                failed.append(fn.__name__)
                print("FAIL %s\n%s" % (fn.__name__, traceback.format_exc()))
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            sys.stdout.flush()
        print("%d tests, %d failed%s" % (ran, len(failed), (": " + ", ".join(failed)) if failed else ""))
        return 1 if failed or ran == 0 else 0
