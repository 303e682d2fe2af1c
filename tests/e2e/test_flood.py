"""End-to-end: a connection flood by strangers without the mesh key
(issue 14, item 3). Real vix-node daemons on loopback; the flood is
tests/flood_conn.c (an ENet client) bound to 127.0.0.2 and up (Linux routes
all of 127/8 to lo).

    python3 test_flood.py PATH_TO_VIX_NODE [TEST...]
    (VN_FLOOD_CONN: path of flood_conn; default: next to vix-node)

The flood keeps going until the honest nodes converged (or a generous
timeout); the test then checks that the flood was still running when they
converged. Timing never decides pass or fail: only deadlines do.
"""

import os
import subprocess
import time

import meshlib as ml
from meshlib import check, vn_ok

FLOOD_ADDRS = ["127.0.0.%d" % i for i in range(2, 8)]
FLOOD_MODES = ["silent", "garbage", "oversized", "hello", "silent", "garbage"]
FLOOD_CONNS = 32          # per source address: 6 x 32 = 192 connections at once, more than every budget
FLOOD_HOLD_MS = 10000     # a flood connection stays this long unless dropped (then it is made again at once)
FLOOD_MAX_S = 300         # the flood's own deadline, far past the convergence timeout
CONVERGE_TIMEOUT_S = 120


def flood_exe():
    env = os.environ.get("VN_FLOOD_CONN")
    return env if env else os.path.join(os.path.dirname(ml.VN), "flood_conn")


def stats(d):
    live = ml.status(d)["daemon"]
    check(live is not None, "no live daemon on %s" % d)
    return live


class Flood:
    def __init__(self, port, stop_file):
        self.stop_file = stop_file
        self.procs = []
        for addr, mode in zip(FLOOD_ADDRS, FLOOD_MODES):
            self.procs.append(subprocess.Popen(
                [flood_exe(), "--to", "127.0.0.1:%d" % port, "--from", addr, "--conns", str(FLOOD_CONNS),
                 "--mode", mode, "--hold-ms", str(FLOOD_HOLD_MS), "--stop-file", stop_file,
                 "--max-s", str(FLOOD_MAX_S)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))

    def running(self):
        return all(p.poll() is None for p in self.procs)

    def stop(self):
        with open(self.stop_file, "w"):
            pass
        totals = {"attempts": 0, "connected": 0, "dropped": 0}
        for p in self.procs:
            out, err = p.communicate(timeout=60)
            check(p.returncode == 0, "flood_conn exited %d: %s" % (p.returncode, err))
            for kv in out.split():
                k, v = kv.split("=")
                totals[k] += int(v)
        return totals

    def kill(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def test_flood_honest_peers_converge(m):
    """Six source addresses flood the victim V with connections that never
    authenticate (silent, junk frames, oversized packets, HELLOs with a bad
    MAC). During the flood an honest peer H dials V, and V's own dial to O
    (started only once the flood runs) succeeds: all three converge while
    the flood goes on. V counts what it refused and evicted."""
    v, h, o = m.init("v"), m.init("h"), m.init("o")
    vn_ok("put", "--data", v, "from-v", "1")
    vn_ok("put", "--data", h, "from-h", "2")
    vn_ok("put", "--data", o, "from-o", "3")
    do = m.start(o)
    o_port = do.port
    do.stop()  # O comes back during the flood, on the same port: V keeps redialling it
    dv = m.start(v, peers=[o_port])
    flood = Flood(dv.port, os.path.join(m.root, "stop-flood"))
    try:
        t0 = time.monotonic()
        # The flood is on: connections reach V (and fill every budget).
        ml.wait_until(lambda: stats(v)["stats"]["connections_in"] >= 200, 60, "the flood to reach V")
        check(flood.running(), "the flood is running")
        t_honest = time.monotonic()
        do.start(o_port)
        dh = m.start(h, peers=[dv.port])
        ml.wait_converged([v, h, o], CONVERGE_TIMEOUT_S)
        converge_s = time.monotonic() - t_honest
        check(flood.running(), "the flood was still running when V, H and O converged")
        during = stats(v)
        dials = during["dials"]
        check(len(dials) == 1 and dials[0]["state"] == "ready", "V's own dial to O is ready: %s" % dials)
        check(len(ml.ready_peers(v)) >= 2, "V has H and O as ready peers")
        totals = flood.stop()
        flood_s = time.monotonic() - t0
    finally:
        flood.kill()
    check(ml.converged([v, h, o]), "still converged")
    check(dv.alive(), "V survived the flood")
    st = stats(v)["stats"]
    lim = stats(v)["limits"]
    check(lim["unauth_in_max"] > 0 and lim["unauth_per_host_max"] > 0 and lim["dials_reserved"] == 1,
          "limits listed: %s" % lim)
    check(lim["hello_timeout_ms"] <= 1000, "HELLO deadline at most 1 s: %s" % lim)
    check(st["evicted_no_hello"] > 0, "V evicted connections without a HELLO")
    check(st["closed_oversized"] > 0, "V closed connections that sent oversized packets")
    check(st["rejected"]["auth"] > 0, "V rejected HELLOs with a bad MAC")
    check(st["handshakes_done"] >= 2, "V completed the handshakes of H and O")
    check(st["connect_requests"] >= 500, "the flood reached V: %d connect requests" % st["connect_requests"])
    print("flood: %d s, %d connection attempts (%d completed by ENet), V: connect_requests=%d refused_host=%d "
          "refused_unauth_full=%d refused_no_slot=%d evicted_no_hello=%d closed_oversized=%d "
          "handshakes_timeout=%d rejected_auth=%d; H, O and V converged %.1f s after H and O started"
          % (flood_s, totals["attempts"], totals["connected"], st["connect_requests"], st["refused_host"],
             st["refused_unauth_full"], st["refused_no_slot"], st["evicted_no_hello"], st["closed_oversized"],
             st["handshakes_timeout"], st["rejected"]["auth"], converge_s), flush=True)
    for dm in (dh, do, dv):
        dm.stop()


def test_oversized_before_auth_closes(m):
    """A connection that has not authenticated and sends a packet larger
    than the largest handshake frame (one datagram, 600 bytes) is closed at
    once and counted; its bytes never reach the node."""
    v = m.init("v")
    dv = m.start(v)
    check(stats(v)["stats"]["closed_oversized"] == 0 and stats(v)["stats"]["frames_in"] == 0, "a fresh daemon")
    r = ml.RawEnet(dv.port)
    r.send(b"\x01\x01" + bytes(598))  # at once: the HELLO deadline (1 s) would close it too
    ml.wait_until(lambda: stats(v)["stats"]["closed_oversized"] == 1, 30,
                  "V to close the connection for its oversized packet")
    after = stats(v)["stats"]
    check(after["frames_in"] == 0, "the packet never reached the node")
    check(after["handshakes_timeout"] == 0, "closed for the packet, not by the HELLO deadline")
    check(ml.status(v)["peers"] == [], "the connection is gone")
    r.close()
    dv.stop()


def test_large_vector_right_after_auth(m):
    """An honest initiator sends its version vector right behind AUTH; with
    40 origins it is larger than a datagram (ENet fragments it) and reaches
    the responder before the responder has processed AUTH. That must not
    count as an oversized packet from an unauthenticated peer."""
    hub = m.init("hub")
    dh = m.start(hub)
    writers = []
    for i in range(40):
        w = m.init("w%02d" % i)
        vn_ok("put", "--data", w, "w%02d" % i, str(i))
        writers.append(w)
    for b in range(0, 40, 10):  # ten daemons at a time: sanitizer builds are heavy
        dws = [m.start(w, peers=[dh.port]) for w in writers[b:b + 10]]
        ml.wait_until(lambda: len(ml.status(hub)["vv"]) == b + 10, 120, "the hub to hold %d origins" % (b + 10))
        for dw in dws:
            dw.stop()
    dh.stop()
    r = m.init("responder")
    dr = m.start(r)
    dh.peers = [dr.port]
    dh.start()  # the hub dials the responder: its first DATA frame is a 40-origin vector (1.6 KB)
    ml.wait_converged([hub, r], 60)
    st = stats(r)["stats"]
    check(st["closed_oversized"] == 0, "nothing closed as oversized: %s" % st)
    dh.stop()
    dr.stop()


if __name__ == "__main__":
    ml.main([
        ("flood_honest_peers_converge", test_flood_honest_peers_converge),
        ("oversized_before_auth_closes", test_oversized_before_auth_closes),
        ("large_vector_right_after_auth", test_large_vector_right_after_auth),
    ])
