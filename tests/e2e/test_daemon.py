"""End-to-end: the daemon's local side channels (issue 14, item 8 and the
SIGHUP blocker): the nudge socket lives inside the data directory, works
for any path length, coalesces a flood of datagrams, and SIGHUP is logged
and ignored.

    python3 test_daemon.py PATH_TO_VIX_NODE [TEST...]

Timing never decides pass or fail: every wait is a generous deadline.
"""

import os
import signal
import socket
import stat
import time

import meshlib as ml
from meshlib import check, vn_ok

NUDGE = "nudge.sock"


stats = ml.stats


def now_ms():
    return int(time.time() * 1000)


def check_private_socket(d):
    path = os.path.join(d, NUDGE)
    st = os.lstat(path)
    check(stat.S_ISSOCK(st.st_mode), "%s is a socket" % path)
    check(stat.S_IMODE(st.st_mode) & 0o077 == 0, "%s is private: mode %o" % (path, stat.S_IMODE(st.st_mode)))
    check(stat.S_IMODE(os.stat(d).st_mode) == 0o700, "the data directory is 0700")
    check(st.st_uid == os.getuid(), "the socket is ours")
    return path


def test_nudge_socket_in_data_dir(m):
    """DIR/nudge.sock, 0600 in the 0700 data directory; a CLI write nudges
    the daemon through it; a clean stop removes it; a kill -9 leaves a
    stale file that status sees through and the next daemon replaces."""
    a = m.init("a")
    da = m.start(a)
    path = check_private_socket(a)
    with open("/proc/net/unix") as f:
        check(any(line.rstrip().endswith(" " + os.path.realpath(path)) for line in f),
              "the daemon's bound socket is the file in the data directory")
    vn_ok("put", "--data", a, "k", "1")
    ml.wait_until(lambda: stats(a)["nudges"] >= 1, 30, "the CLI write to nudge the daemon")
    check(stats(a)["nudge_wakes"] >= 1, "a nudge woke the daemon")
    da.stop()
    check(not os.path.exists(path), "a clean stop removes the socket file")
    da.start()
    check_private_socket(a)
    da.kill()
    check(os.path.exists(path), "kill -9 leaves the socket file")
    check(ml.status(a)["daemon"] is None, "status sees no daemon behind a stale socket file")
    da.start()
    check_private_socket(a)
    vn_ok("put", "--data", a, "k", "2")
    ml.wait_until(lambda: stats(a)["nudges"] >= 1, 30, "a nudge through the replaced socket")
    da.stop()


def test_nudge_long_data_dir(m):
    """A data directory whose path is longer than sun_path (108 bytes): the
    daemon starts, its socket is still inside the directory, and a CLI
    write nudges it."""
    deep = os.path.join(m.root, *(["d" * 50] * 4))
    check(len(os.path.join(deep, NUDGE)) > 108, "the path is longer than sun_path")
    d = m.init(os.path.relpath(deep, m.root))
    dd = m.start(d)
    check_private_socket(d)
    check("nudge_unavailable" not in dd.text(), "no fallback needed: %s" % dd.text())
    vn_ok("put", "--data", d, "k", "1")
    ml.wait_until(lambda: stats(d)["nudges"] >= 1, 30, "the CLI write to nudge the daemon")
    check(ml.status(d)["daemon"] is not None, "status finds the daemon")
    dd.stop()
    check(not os.path.exists(os.path.join(d, NUDGE)), "a clean stop removes the socket file")


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def test_nudge_flood_coalesced(m):
    """A local flood of datagrams to the nudge socket: every datagram that
    got in is read, but the daemon wakes far fewer times (coalesced: one
    wake drains what came since the last)."""
    a = m.init("a")
    da = m.start(a)
    path = check_private_socket(a)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.setblocking(False)
    sent = tried = 0
    hz = os.sysconf("SC_CLK_TCK")
    cpu0, t0 = cpu_ticks(da.proc.pid), time.monotonic()
    while time.monotonic() - t0 < 3.0:
        for _ in range(1000):
            tried += 1
            try:
                s.sendto(b"n", path)
                sent += 1
            except (BlockingIOError, ConnectionRefusedError):
                pass
    elapsed = time.monotonic() - t0
    cpu = (cpu_ticks(da.proc.pid) - cpu0) / hz
    s.close()
    st = ml.wait_until(lambda: (lambda x: x if x["nudges"] >= sent else None)(stats(a)), 30,
                       "the daemon to read all %d datagrams" % sent)
    print("nudge flood: %d sendto tried, %d queued in %.1f s; daemon read %d in %d wakes, cpu %.2f s"
          % (tried, sent, elapsed, st["nudges"], st["nudge_wakes"], cpu), flush=True)
    check(sent >= 100, "the flood got datagrams in: %d" % sent)
    check(st["nudge_wakes"] * 2 <= st["nudges"], "wakes are coalesced: %d wakes for %d datagrams"
          % (st["nudge_wakes"], st["nudges"]))
    check(da.alive(), "the daemon survived")
    da.stop()


def test_sighup_logged_and_ignored(m):
    """SIGHUP (systemd's reload) does not stop the daemon: one log line,
    a counter, and the daemon goes on syncing; SIGTERM still stops it."""
    a, b = m.init("a"), m.init("b")
    da = m.start(a)
    db = m.start(b, peers=[da.port])
    da.proc.send_signal(signal.SIGHUP)
    ml.wait_until(lambda: "event=sighup action=ignored" in da.text(), 30, "the sighup log line")
    check(da.alive(), "the daemon is alive after SIGHUP")
    check(stats(a, now_ms())["sighups"] == 1, "one SIGHUP counted")
    vn_ok("put", "--data", a, "after-hup", "1")
    ml.wait_converged([a, b], 60)
    check(da.text().count("event=sighup") == 1, "one line per SIGHUP")
    db.stop()
    da.stop()


if __name__ == "__main__":
    ml.main([
        ("nudge_socket_in_data_dir", test_nudge_socket_in_data_dir),
        ("nudge_long_data_dir", test_nudge_long_data_dir),
        ("nudge_flood_coalesced", test_nudge_flood_coalesced),
        ("sighup_logged_and_ignored", test_sighup_logged_and_ignored),
    ])
