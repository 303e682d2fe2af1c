"""Invite tokens in Python, from the documented layout (docs/membership.md,
"The invite token"), for the end-to-end tests: forged tokens, and reading
what `vix-node invite` printed. Python standard library only."""
import base64
import hashlib
import os
import struct

PREFIX = "vix1-"
VERSION = 1


def _check(body):
    return hashlib.blake2b(body, digest_size=32).digest()[:4]


def encode(mesh_id, invite_seed, inviter, invite_seq, mesh_key, addrs=(), version=VERSION):
    """The token line of these fields; addrs: [(host, port)]."""
    assert len(mesh_id) == len(invite_seed) == len(inviter) == len(mesh_key) == 32
    body = struct.pack("<B", version) + mesh_id + invite_seed + inviter + struct.pack("<Q", invite_seq) + mesh_key
    body += struct.pack("<B", len(addrs))
    for host, port in addrs:
        h = host.encode("ascii")
        body += struct.pack("<B", len(h)) + h + struct.pack("<H", port)
    body += _check(body)
    return PREFIX + base64.urlsafe_b64encode(body).rstrip(b"=").decode("ascii")


def decode(line):
    """The fields of a token line (a dict); raises ValueError when it is not one."""
    if not line.startswith(PREFIX):
        raise ValueError("no prefix")
    text = line[len(PREFIX):]
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    body, check = raw[:-4], raw[-4:]
    if len(raw) < 4 or _check(body) != check:
        raise ValueError("check")
    off = 0
    out = {"version": body[0]}
    off = 1
    for name in ("mesh_id", "invite_seed", "inviter"):
        out[name] = body[off:off + 32]
        off += 32
    (out["invite_seq"],) = struct.unpack("<Q", body[off:off + 8])
    off += 8
    out["mesh_key"] = body[off:off + 32]
    off += 32
    n = body[off]
    off += 1
    addrs = []
    for _ in range(n):
        hl = body[off]
        off += 1
        host = body[off:off + hl].decode("ascii")
        off += hl
        (port,) = struct.unpack("<H", body[off:off + 2])
        off += 2
        addrs.append("%s:%d" % (host, port))
    out["addrs"] = addrs
    if off != len(body):
        raise ValueError("trailing bytes")
    return out


def forged(mesh_key=None, addrs=()):
    """A well-formed token no admin ever issued: random mesh id, inviter and
    invite key; `mesh_key` (bytes) when the forger holds the real one."""
    return encode(os.urandom(32), os.urandom(32), os.urandom(32), 2, mesh_key or os.urandom(32), addrs)
