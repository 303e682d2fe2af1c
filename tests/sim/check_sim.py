#!/usr/bin/env python3
"""Tests of vix-sim (ctest entries; python3 standard library only).

  check_sim.py determinism VIX_SIM      same seed twice: same trace_hash; another seed:
                                        another; --report does not change the run
  check_sim.py cli VIX_SIM              usage errors exit 2; --inject-bug needs the fault build
  check_sim.py scenario VIX_SIM FILE    the scenario passes; its "# expect KEY >= N" (or <=) lines hold
  check_sim.py swarm VIX_SIM K [OPT..]  K seeds with randomized fault mixes (and options such as
                                        --equivocate), no failure
  check_sim.py seeds VIX_SIM FILE S,..  the scenario passes with each pinned seed (--seed S), its
                                        "# expect" lines hold
  check_sim.py bug VIX_SIM_FAULTS VIX_SIM NAME SEED [OPT..]
                                        the pinned seed (with options such as --managed and
                                        --event lines) catches bug NAME, its printed replay
                                        command fails the same way, and the same seed passes
                                        without the bug
"""
import json
import os
import shlex
import subprocess
import sys
import tempfile

SMALL = ["--nodes", "6", "--ops", "200"]


def run(argv, timeout=900):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def run_json(argv):
    rc, out, err = run(argv + ["--json"])
    try:
        return rc, json.loads(out), err
    except json.JSONDecodeError:
        sys.exit("not JSON (rc %d): %r\nstderr: %s" % (rc, out[:500], err[-2000:]))


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def determinism(sim):
    runs = {}
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        rc, j, err = run_json([sim, "--seed", str(seed)] + SMALL)
        if rc != 0 or not j["ok"]:
            fail("seed %d: rc %d: %s\n%s" % (seed, rc, j.get("reason"), err))
        runs[name] = j
        print("seed %d: trace_hash %s, %d frames, converged at %d ms" %
              (seed, j["trace_hash"], j["network"]["frames_sent"], j["converged_at_ms"]))
    if runs["a"]["trace_hash"] != runs["b"]["trace_hash"]:
        fail("same seed, different trace hashes")
    if runs["a"]["state_hash"] != runs["b"]["state_hash"]:
        fail("same seed, different state hashes")
    if runs["a"]["trace_hash"] == runs["c"]["trace_hash"]:
        fail("different seeds, same trace hash")
    # The equivocating writer is part of the run, and replays as exactly.
    eq = []
    for _ in range(2):
        rc, j, err = run_json([sim, "--seed", "7", "--equivocate"] + SMALL)
        if rc != 0 or not j["ok"]:
            fail("--equivocate seed 7: rc %d: %s\n%s" % (rc, j.get("reason"), err))
        eq.append(j)
    if eq[0]["trace_hash"] != eq[1]["trace_hash"] or eq[0]["trace_hash"] == runs["a"]["trace_hash"]:
        fail("--equivocate: not deterministic, or the same trace as without it")
    rc, j, _ = run_json(shlex.split(eq[0]["replay"]))
    if j["trace_hash"] != eq[0]["trace_hash"]:
        fail("--equivocate: the printed replay command runs another trace: %s" % eq[0]["replay"])
    # So does a managed mesh (issue 16) with its membership events.
    mg = []
    for _ in range(2):
        rc, j, err = run_json([sim, "--seed", "7", "--managed", "--spare", "1", "--event", "1s outsider 5",
                               "--event", "2s revoke 0 3"] + SMALL)
        if rc != 0 or not j["ok"]:
            fail("--managed seed 7: rc %d: %s\n%s" % (rc, j.get("reason"), err))
        mg.append(j)
    if mg[0]["trace_hash"] != mg[1]["trace_hash"] or mg[0]["trace_hash"] == runs["a"]["trace_hash"]:
        fail("--managed: not deterministic, or the same trace as without it")
    rc, j, _ = run_json(shlex.split(mg[0]["replay"]))
    if j["trace_hash"] != mg[0]["trace_hash"]:
        fail("--managed: the printed replay command runs another trace: %s" % mg[0]["replay"])
    # An option that shapes the run changes the hash; the report does not.
    rc, j, _ = run_json([sim, "--seed", "7", "--drop", "3"] + SMALL)
    if j["trace_hash"] == runs["a"]["trace_hash"]:
        fail("--drop 3 did not change the trace hash")
    with tempfile.TemporaryDirectory() as d:
        report = os.path.join(d, "r.html")
        rc, j, err = run_json([sim, "--seed", "7", "--report", report] + SMALL)
        if rc != 0 or j["trace_hash"] != runs["a"]["trace_hash"]:
            fail("--report changed the run (rc %d): %s" % (rc, err))
        html = open(report, encoding="utf-8").read()
        if "<svg" not in html or "<script" in html or "http://" in html.replace("http://www.w3.org/2000/svg", ""):
            fail("the report is not a self-contained SVG page")
    print("ok: deterministic")


def cli(sim):
    for argv in (["--nodes", "0"], ["--bogus"], ["--drop", "101"], ["--event", "1s crash 99"] + SMALL,
                 ["--topology", "full", "--nodes", "70"], ["--latency", "0-5ms"],
                 ["--compact", "on"] + SMALL, ["--managed", "--compact", "maybe"] + SMALL,
                 ["--tamper-snapshot"] + SMALL, ["--managed", "--equivocate", "--admins", "2"] + SMALL,
                 ["--suspend-after", "20s"] + SMALL, ["--invite-expiry", "5s"] + SMALL,
                 ["--managed", "--invite-expiry", "0ms"] + SMALL, ["--join-net"] + SMALL):
        rc, out, err = run([sim] + argv)
        if rc != 2:
            fail("%s: exit %d, want 2 (usage)" % (argv, rc))
    rc, out, err = run([sim, "--inject-bug", "dup-incr"] + SMALL)
    if rc != 2 or "fault-injection build" not in err:
        fail("--inject-bug on the release build: exit %d: %s" % (rc, err))
    rc, out, _ = run([sim, "--help"])
    if rc != 0 or "--nodes" not in out:
        fail("--help")
    print("ok: usage errors exit 2")


def scenario(sim, path, extra=()):
    rc, j, err = run_json([sim, "--scenario", path] + list(extra))
    print("%s: ok=%s trace_hash %s, virtual %d ms, converged at %d ms, faults %s" %
          (os.path.basename(path), j["ok"], j["trace_hash"], j["virtual_ms"], j["converged_at_ms"], j["faults"]))
    if rc != 0 or not j["ok"]:
        fail("%s: exit %d: %s\n  replay: %s\n%s" % (path, rc, j["reason"], j["replay"], err[-3000:]))
    for line in open(path, encoding="utf-8"):
        words = line.split()
        if words[:2] != ["#", "expect"]:
            continue
        key, op, want = words[2], words[3], int(words[4])
        v = j
        for part in key.split("."):
            v = v[part]
        if op not in (">=", "<=") or (op == ">=" and v < want) or (op == "<=" and v > want):
            fail("%s: expected %s %s %d, got %s" % (path, key, op, want, v))
    print("ok: scenario")


def seeds(sim, path, pinned):
    for seed in pinned.split(","):
        scenario(sim, path, ["--seed", seed])
    print("ok: seeds %s" % pinned)


def swarm(sim, k, extra):
    rc, out, err = run([sim, "--swarm", str(k), "--seed", "1"] + SMALL + extra, timeout=1800)
    print(out.strip())
    if rc != 0 or " 0 failed" not in out:
        fail("swarm: exit %d\n%s" % (rc, err[-3000:]))
    print("ok: swarm of %d seeds %s" % (k, " ".join(extra)))


def bug(faults, release, name, seed, extra=()):
    argv = ["--swarm", "1", "--seed", seed] + SMALL + list(extra) + ["--inject-bug", name]
    rc, out, err = run([faults] + argv)
    print(out.strip())
    if rc != 1 or "FAIL seed %s" % seed not in out:
        fail("bug %s: the pinned seed %s was not caught (exit %d). If the core's behaviour changed, find a new "
             "seed with `vix-sim-faults --nodes 6 --ops 200 --seed 1 --swarm 200 --inject-bug %s --stop-on-fail` and "
             "pin it in CMakeLists.txt.\n%s" % (name, seed, rc, name, err[-2000:]))
    reason = out.split("FAIL seed %s: " % seed, 1)[1].split("\n", 1)[0]
    replay = out.split("replay: ", 1)[1].split("\n", 1)[0]
    rc2, j, err2 = run_json(shlex.split(replay))
    if rc2 != 1 or j["ok"] or j["reason"] != reason:
        fail("the replay command did not fail the same way (exit %d): %s\n  want: %s" % (rc2, j.get("reason"), reason))
    rc3, j3, _ = run_json(shlex.split(replay))
    if j3["trace_hash"] != j["trace_hash"]:
        fail("the replay is not deterministic")
    clean = [a for a in shlex.split(replay) if a != name and a != "--inject-bug"]
    clean[0] = release
    rc4, j4, err4 = run_json(clean)
    if rc4 != 0 or not j4["ok"]:
        fail("without the bug the same run fails too: %s\n%s" % (j4["reason"], err4[-2000:]))
    print("ok: bug %s caught by seed %s: %s" % (name, seed, reason))


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    mode, sim = sys.argv[1], sys.argv[2]
    if mode == "determinism":
        determinism(sim)
    elif mode == "cli":
        cli(sim)
    elif mode == "scenario":
        scenario(sim, sys.argv[3])
    elif mode == "seeds":
        seeds(sim, sys.argv[3], sys.argv[4])
    elif mode == "swarm":
        swarm(sim, int(sys.argv[3]), sys.argv[4:])
    elif mode == "bug":
        bug(sim, sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
