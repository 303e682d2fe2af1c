"""vix-node's managed-mesh commands (init --new-mesh, invite, join, revoke,
members): their command lines, help and exit codes, everything that is
decided before the membership library is called. The commands' effects on
real meshes are in test_members.py.

Usage: python3 test_mesh_cli.py PATH_TO_VIX_NODE [TEST...]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import meshtoken  # noqa: E402
import vnlib  # noqa: E402

suite = vnlib.Suite()
MESH_COMMANDS = ["invite", "join", "revoke", "members"]
ID = "ab" * 32


def usage_error(t, r, cmd):
    """Exit 2 with one 'vix-node CMD: ... (usage: ...)' line, nothing on stdout."""
    t.expect(r, 2, "")
    line = t.one_error_line(r, cmd)
    assert "(usage: vix-node %s " % cmd in line, r
    return line


@suite.test
def test_help(t):
    top = t.expect(t.run("--help"), 0)
    for cmd in MESH_COMMANDS:
        assert "\n  %s " % cmd in top.out, cmd
        for flag in ("--help", "-h"):
            r = t.expect(t.run(cmd, flag), 0)
            assert r.out.startswith("usage: vix-node %s --data DIR" % cmd) and r.err == "", r
        t.expect(t.run(cmd, "--bogus", "x", "--help"), 0)  # help wins
    assert "--new-mesh" in t.expect(t.run("init", "--help"), 0).out
    assert "--new-mesh" in top.out


@suite.test
def test_init_new_mesh_arguments(t):
    n = t.node()
    key = t.write("k", t.run("mesh-key").out, 0o600)
    line = usage_error(t, n.run("init", "--new-mesh", "--mesh-key", key), "init")
    assert "--new-mesh" in line and "--mesh-key" in line
    usage_error(t, n.run("init", "--new-mesh=yes"), "init")
    usage_error(t, n.run("init", "--new-mesh", "--new-mesh"), "init")
    usage_error(t, t.run("init", "--new-mesh"), "init")  # no --data
    assert not os.path.exists(n.data)
    # A foreign, non-empty directory: exit 3, left alone.
    foreign = t.path("foreign")
    os.mkdir(foreign)
    t.write("foreign/notes.txt", "mine")
    r = t.expect(t.run("init", "--data", foreign, "--new-mesh"), 3, "")
    assert "notes.txt" in t.one_error_line(r, "init")
    assert sorted(os.listdir(foreign)) == ["notes.txt"]


@suite.test
def test_init_new_mesh_refuses_a_device_that_wrote(t):
    # An open-mesh device that already wrote cannot found a managed mesh:
    # exit 1 and its mesh key, identity and data untouched.
    n = t.node()
    node_id = n.init()
    n.ok("put", "x", "1")
    with open(os.path.join(n.data, "mesh.key")) as f:
        key = f.read()
    r = t.expect(n.run("init", "--new-mesh"), 1, "")
    t.one_error_line(r, "init")
    with open(os.path.join(n.data, "mesh.key")) as f:
        assert f.read() == key
    t.expect(n.run("id"), 0, node_id + "\n")
    assert n.get("x") == "1"


@suite.test
def test_init_mesh_key_refused_on_a_managed_device(t):
    # A managed device's key comes with its invite: `init --mesh-key` over it
    # would cut it off from its mesh. Exit 1, mesh.key and identity untouched.
    n = t.node()
    node_id = t.expect(n.run("init", "--new-mesh"), 0).out.strip()
    with open(os.path.join(n.data, "mesh.key")) as f:
        key = f.read()
    other = t.write("other.key", t.run("mesh-key").out, 0o600)
    r = t.expect(n.run("init", "--mesh-key", other), 1, "")
    assert "managed mesh" in t.one_error_line(r, "init")
    with open(os.path.join(n.data, "mesh.key")) as f:
        assert f.read() == key
    t.expect(n.run("id"), 0, node_id + "\n")
    t.expect(n.run("init"), 0, node_id + "\n")  # a plain init keeps what is there


@suite.test
def test_invite_arguments(t):
    n = t.node()  # never made: every one of these fails before the directory is read
    for args in (["--role", "owner"], ["--role", "Admin"], ["--role="],
                 ["--expires", "0h"], ["--expires", "24"], ["--expires", "h"], ["--expires", "1y"],
                 ["--expires", "-5m"], ["--expires", "1.5h"], ["--expires", "3651d"],
                 ["--expires", "99999999999999999999d"], ["--expires", "24 h"],
                 ["--addr", "nohost"], ["--addr", "host:0"], ["--addr", "host:65536"], ["--addr", ":80"],
                 ["--addr", "ho st:80"], ["--addr", "host:080"],
                 ["--addr", "a:1", "--addr", "b:2", "--addr", "c:3", "--addr", "d:4", "--addr", "e:5"],
                 ["--role", "admin", "--role", "reader"], ["--expires", "1h", "--expires", "2h"],
                 ["--json"], ["--bogus"], ["extra"], ["--role"]):
        usage_error(t, n.run("invite", *args), "invite")
    usage_error(t, t.run("invite"), "invite")  # no --data
    assert not os.path.exists(n.data)
    # Valid arguments on a missing data directory: exit 3.
    r = t.expect(n.run("invite", "--role", "reader", "--expires", "90m", "--addr", "127.0.0.1:7000",
                       "--addr", "[::1]:7001", "--addr", "peer.example:65535", "--addr", "h:1"), 3, "")
    t.one_error_line(r, "invite")


@suite.test
def test_join_arguments_and_bad_tokens(t):
    n = t.node("new")
    usage_error(t, n.run("join"), "join")  # no TOKEN
    usage_error(t, n.run("join", "a", "b"), "join")
    usage_error(t, t.run("join", "vix1-x"), "join")  # no --data
    good = meshtoken.forged(addrs=[("127.0.0.1", 7000)])
    assert meshtoken.decode(good)["addrs"] == ["127.0.0.1:7000"]
    # One character changed anywhere in the payload: the check catches it.
    flip = good[:10] + ("A" if good[10] != "A" else "B") + good[11:]
    wrong_version = meshtoken.encode(os.urandom(32), os.urandom(32), os.urandom(32), 2, os.urandom(32), version=2)
    bad = ["", "   ", "hello", "vix1-", "vix1-!!!!", good[:-3], good + "A", flip, "vix2-" + good[5:],
           good.replace("vix1-", "VIX1-"), wrong_version, good[:40] + " " + good[40:], "vix1-" + "A" * 2000]
    for tok in bad:
        r = t.expect(n.run("join", tok), 2, "")
        assert "bad token" in t.one_error_line(r, "join"), r
        assert not os.path.exists(n.data), tok
    # From standard input ('-'), with the same checks.
    r = t.expect(n.run("join", "-", input=flip + "\n"), 2, "")
    assert "bad token" in t.one_error_line(r, "join")
    t.expect(n.run("join", "-", input=""), 2, "")
    assert not os.path.exists(n.data)
    # A well-formed token into a foreign, non-empty directory: exit 3, left alone.
    foreign = t.path("foreign")
    os.mkdir(foreign)
    t.write("foreign/notes.txt", "mine")
    r = t.expect(t.run("join", "--data", foreign, "  " + good + "\n"), 3, "")
    assert "notes.txt" in t.one_error_line(r, "join")
    assert sorted(os.listdir(foreign)) == ["notes.txt"]


@suite.test
def test_revoke_arguments(t):
    n = t.node()
    for dev in ["", "12", ID[:-1], ID + "0", "zz" + ID[2:], " " + ID[1:], "0x" + ID[2:]]:
        usage_error(t, n.run("revoke", "--", dev) if dev.startswith("-") else n.run("revoke", dev), "revoke")
    usage_error(t, n.run("revoke"), "revoke")
    usage_error(t, n.run("revoke", ID, ID), "revoke")
    usage_error(t, n.run("revoke", ID, "--json"), "revoke")
    usage_error(t, t.run("revoke", ID), "revoke")
    assert not os.path.exists(n.data)
    r = t.expect(n.run("revoke", ID.upper()), 3, "")  # a valid id (either case); no data directory
    t.one_error_line(r, "revoke")


@suite.test
def test_members_arguments(t):
    n = t.node()
    usage_error(t, n.run("members", "x"), "members")
    usage_error(t, n.run("members", "--json=1"), "members")
    usage_error(t, n.run("members", "--json", "--json"), "members")
    usage_error(t, n.run("members", "--role", "admin"), "members")
    usage_error(t, t.run("members"), "members")
    r = t.expect(n.run("members"), 3, "")
    t.one_error_line(r, "members")
    r = t.expect(n.run("members", "--json"), 3, "")
    t.one_error_line(r, "members")


if __name__ == "__main__":
    sys.exit(suite.main(sys.argv))
