"""Helpers for the mesh end-to-end tests: vix-node daemons as real processes
on 127.0.0.1, their data directories, and a raw ENet client for garbage.

Python standard library only. Every wait has a deadline; timing never
decides a verdict except as a generous timeout.
"""

import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

VN = None  # path of vix-node, set by main()
CMD_TIMEOUT_S = 60.0


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


# ---- one-shot commands ----

def vn(*args, stdin=None, timeout=CMD_TIMEOUT_S, env=None):
    """Run `vix-node ARGS`; returns (rc, stdout, stderr)."""
    p = subprocess.run([VN] + [str(a) for a in args], input=stdin, capture_output=True, text=True,
                       timeout=timeout, env=env)
    return p.returncode, p.stdout, p.stderr


def vn_ok(*args, **kw):
    rc, out, err = vn(*args, **kw)
    check(rc == 0, "vix-node %s: exit %d, stderr: %s" % (" ".join(map(str, args)), rc, err.strip()))
    return out


def vn_json(*args):
    return json.loads(vn_ok(*args))


def status(d):
    return vn_json("status", "--data", d, "--json")


def dump(d):
    return vn_json("dump", "--data", d, "--json")


def fingerprint(d):
    s = status(d)
    return s["state_hash"], s["vv"]


def wait_until(pred, timeout_s, what, interval_s=0.1):
    """Poll pred() until it returns a true value (returned) or the deadline."""
    deadline = time.monotonic() + timeout_s
    last = None
    while True:
        last = pred()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise Failure("timed out after %.0f s waiting for %s" % (timeout_s, what))
        time.sleep(interval_s)


def stats(d, after_ms=0):
    """The daemon's counters; after_ms: wait for a run.json written after it."""
    def fresh():
        live = status(d)["daemon"]
        check(live is not None, "no live daemon on %s" % d)
        return live if live["updated_ms"] > after_ms else None
    return wait_until(fresh, 30, "a fresh run.json on %s" % d)["stats"]


def converged(dirs):
    fps = [fingerprint(d) for d in dirs]
    return all(fp == fps[0] for fp in fps)


def wait_converged(dirs, timeout_s=60.0):
    wait_until(lambda: converged(dirs), timeout_s, "state hashes and version vectors to agree", 0.2)


# ---- a mesh on disk ----

class Mesh:
    """Temporary data directories sharing one mesh key; daemons on them."""

    def __init__(self, tag):
        self.root = tempfile.mkdtemp(prefix="vixsync-e2e-%s-" % tag)
        self.key = os.path.join(self.root, "mesh.key")
        with open(os.open(self.key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(vn_ok("mesh-key"))
        self.daemons = []

    def init(self, name, key=None):
        d = os.path.join(self.root, name)
        vn_ok("init", "--data", d, "--mesh-key", key or self.key)
        return d

    def other_key(self, name):
        path = os.path.join(self.root, name)
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(vn_ok("mesh-key"))
        return path

    def start(self, d, peers=(), port=0, extra=()):
        dm = Daemon(self, d, peers, port, extra)
        self.daemons.append(dm)
        return dm

    def close(self, keep=False):
        for dm in self.daemons:
            dm.kill()
        if not keep:
            shutil.rmtree(self.root, ignore_errors=True)


class Daemon:
    """`vix-node run` on a data directory, its stderr in a log file."""

    def __init__(self, mesh, d, peers, port, extra):
        self.dir = d
        self.peers = list(peers)
        self.extra = list(extra)
        self.runs = 0
        self.proc = None
        self.port = None
        self.mesh = mesh
        self.start(port)

    def start(self, port=None):
        check(self.proc is None, "daemon on %s already running" % self.dir)
        self.runs += 1
        self.log = "%s.run%d.log" % (self.dir, self.runs)
        want = self.port if port is None else port
        args = [VN, "run", "--data", self.dir, "--listen", "127.0.0.1:%d" % (want or 0)]
        for p in self.peers:
            args += ["--peer", "127.0.0.1:%d" % p if isinstance(p, int) else p]
        args += self.extra
        self.logf = open(self.log, "w")
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self.logf)
        m = wait_until(self._listening, 30.0, "%s to listen (log %s)" % (self.dir, self.log), 0.02)
        self.port = int(m.group(1))
        return self

    def _listening(self):
        if self.proc.poll() is not None:
            raise Failure("daemon on %s exited with %d: %s" % (self.dir, self.proc.returncode, self.text()))
        return re.search(r"event=listening addr=127\.0\.0\.1:(\d+)", self.text())

    def text(self):
        with open(self.log) as f:
            return f.read()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout_s=30.0):
        """SIGTERM; the daemon must exit 0 and remove its run.json."""
        check(self.alive(), "daemon on %s died: %s" % (self.dir, self.text() if self.proc else ""))
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=timeout_s)
        self.logf.close()
        self.proc = None
        check(rc == 0, "daemon on %s exited %d after SIGTERM: %s" % (self.dir, rc, self.text()))
        check(not os.path.exists(os.path.join(self.dir, "run.json")), "run.json left after a clean stop")

    def kill(self):
        """SIGKILL (nothing acknowledged may be lost)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        self.logf.close()
        self.proc = None

    def live(self):
        """The daemon part of status --json (None when not running)."""
        return status(self.dir)["daemon"]


def ready_peers(d):
    return [p for p in status(d)["peers"] if p.get("state") == "ready"]


# ---- raw ENet (protocol.h), for garbage and half-open floods ----

CMD_ACK, CMD_CONNECT, CMD_VERIFY, CMD_DISCONNECT, CMD_PING, CMD_RELIABLE = 1, 2, 3, 4, 5, 6
FLAG_ACK = 0x80
HDR_SENT_TIME = 0x8000
PEER_ID_NONE = 0x0FFF
CMD_SIZES = [0, 8, 48, 44, 8, 4, 6, 8, 24, 8, 12, 16, 24]


def enet_connect_packet(connect_id, sent_time=0, outgoing_peer_id=0):
    """One datagram: header (peer 0xFFF, sent time) + a CONNECT command."""
    hdr = struct.pack(">HH", HDR_SENT_TIME | PEER_ID_NONE, sent_time & 0xFFFF)
    cmd = struct.pack(">BBHHBBIIIIIIIII", CMD_CONNECT | FLAG_ACK, 0xFF, 1, outgoing_peer_id, 0xFF, 0xFF,
                      1400, 32768, 1, 0, 0, 5000, 2, 2, connect_id) + struct.pack(">I", 0)
    assert len(cmd) == 48
    return hdr + cmd


def parse_commands(data):
    """(peer_id_field, sent_time, [(command, channel, seq, body)]) of a datagram."""
    if len(data) < 2:
        return None
    (pid,) = struct.unpack(">H", data[:2])
    off, sent = 2, None
    if pid & HDR_SENT_TIME:
        if len(data) < 4:
            return None
        (sent,) = struct.unpack(">H", data[2:4])
        off = 4
    cmds = []
    while off + 4 <= len(data):
        c, ch, seq = struct.unpack(">BBH", data[off:off + 4])
        size = CMD_SIZES[c & 0x0F] if (c & 0x0F) < len(CMD_SIZES) else 0
        if size == 0 or off + size > len(data):
            break
        body = data[off:off + size]
        off += size
        if (c & 0x0F) in (6, 7, 9):  # sends carry dataLength then data
            (dl,) = struct.unpack(">H", body[size - 2:size])
            body += data[off:off + dl]
            off += dl
        cmds.append((c & 0x0F, ch, seq, body))
    return pid, sent, cmds


class RawEnet:
    """A minimal ENet client: connects (CONNECT, VERIFY_CONNECT, ACK) and
    sends reliable packets on channel 0, so garbage reaches vs_node_on_frame
    through a real ENet session. Not a full implementation: no resends,
    no fragments; enough on loopback for a few seconds."""

    def __init__(self, port, timeout_s=5.0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.addr = ("127.0.0.1", port)
        self.seq = 0
        self.t0 = time.monotonic()
        cid = random.getrandbits(32)
        self.sock.sendto(enet_connect_packet(cid, self._now()), self.addr)
        deadline = time.monotonic() + timeout_s
        self.sock.settimeout(0.2)
        while True:
            check(time.monotonic() < deadline, "raw ENet connect: no VERIFY_CONNECT")
            try:
                data, _ = self.sock.recvfrom(65536)
            except socket.timeout:
                self.sock.sendto(enet_connect_packet(cid, self._now()), self.addr)
                continue
            parsed = parse_commands(data)
            if parsed is None:
                continue
            _, sent, cmds = parsed
            for c, ch, seq, body in cmds:
                if c == CMD_VERIFY:
                    out_peer, _in_sess, out_sess = struct.unpack(">HBB", body[4:8])
                    self.peer_id = out_peer
                    self.session = out_sess & 3
                    self._send([struct.pack(">BBHHH", CMD_ACK, ch, 0, seq, sent or 0)])
                    return

    def _now(self):
        return int((time.monotonic() - self.t0) * 1000) & 0xFFFF

    def _send(self, cmds):
        hdr = struct.pack(">HH", HDR_SENT_TIME | (self.session << 12) | self.peer_id, self._now())
        self.sock.sendto(hdr + b"".join(cmds), self.addr)

    def send(self, payload):
        """One reliable packet on channel 0 (payload < ~1300 bytes)."""
        self.seq += 1
        self._send([struct.pack(">BBHH", CMD_RELIABLE | FLAG_ACK, 0, self.seq & 0xFFFF, len(payload)) + payload])

    def close(self):
        self.sock.close()


def blast_garbage(port, count, rng):
    """Random and truncated datagrams, some shaped like ENet headers."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    base = enet_connect_packet(1)
    for i in range(count):
        kind = i % 4
        if kind == 0:
            data = rng.randbytes(rng.randrange(0, 1500))
        elif kind == 1:  # a CONNECT cut short
            data = enet_connect_packet(rng.getrandbits(32))[:rng.randrange(0, len(base))]
        elif kind == 2:  # a header aimed at a live peer slot, random commands
            pid = rng.randrange(0, 128) | (rng.randrange(0, 4) << 12) | HDR_SENT_TIME
            data = struct.pack(">HH", pid, rng.getrandbits(16)) + rng.randbytes(rng.randrange(0, 200))
        else:  # a valid command header with a lying length
            data = struct.pack(">HHBBHH", HDR_SENT_TIME | PEER_ID_NONE, 0, rng.randrange(0, 16) | FLAG_ACK,
                               rng.randrange(0, 256), rng.getrandbits(16), rng.getrandbits(16)) + \
                rng.randbytes(rng.randrange(0, 64))
        try:
            s.sendto(data, ("127.0.0.1", port))
        except OSError:
            pass  # ENOBUFS under load: the datagram is lost, as on a real network
        if i % 200 == 199:
            time.sleep(0.005)  # do not only measure the socket buffer
    s.close()


def flood_half_open(port, count, rng, sockets=8):
    """CONNECT commands from a few sockets that never acknowledge: each
    takes an ENet peer slot on the daemon until its sweep resets it."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(sockets)]
    for i in range(count):
        try:
            socks[i % sockets].sendto(enet_connect_packet(rng.getrandbits(32), i), ("127.0.0.1", port))
        except OSError:
            pass
        if i % 100 == 99:
            time.sleep(0.005)
    for s in socks:
        s.close()


# ---- a test runner ----

def main(tests):
    """Run each test(name, fn) with its own Mesh; print durations; exit 1 on failure."""
    global VN
    if len(sys.argv) < 2:
        print("usage: %s PATH_TO_VIX_NODE [TEST...]" % sys.argv[0], file=sys.stderr)
        sys.exit(2)
    VN = os.path.abspath(sys.argv[1])
    only = set(sys.argv[2:])
    failed = []
    t_all = time.monotonic()
    for name, fn in tests:
        if only and name not in only:
            continue
        mesh = Mesh(name)
        t0 = time.monotonic()
        ok = False
        try:
            fn(mesh)
            ok = True
        except Exception as e:  # report every test, then fail
            print("FAIL %s (%.1f s): %s: %s" % (name, time.monotonic() - t0, type(e).__name__, e), flush=True)
            for dm in mesh.daemons:
                if dm.proc is not None or os.path.exists(dm.log):
                    print("---- %s\n%s" % (dm.log, dm.text()[-4000:]), flush=True)
            failed.append(name)
        finally:
            mesh.close(keep=not ok and os.environ.get("VN_E2E_KEEP") == "1")
        if ok:
            print("ok   %s (%.1f s)" % (name, time.monotonic() - t0), flush=True)
    print("%d failed, total %.1f s" % (len(failed), time.monotonic() - t_all), flush=True)
    sys.exit(1 if failed else 0)
