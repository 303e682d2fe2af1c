#!/usr/bin/env python3
"""Write the wire v3 seeds of tests/fuzz_node_frame.c into its corpus.

(OPS messages are written as wire v7 lays them out; the VV messages below
are still wire v3's.)

Usage: python3 tests/fuzz/make_seeds_v3.py [CORPUS_DIR]   (default: tests/fuzz/corpus)

Every seed is an odd input (inside an authenticated session: each frame is
the plaintext of one DATA frame, after a u16 LE length), named by the SHA-1
of its content like the rest of the corpus. They reach the messages wire v3
added (include/vixsync/wire.h):

  want-held      WANT for the node's own origin at seqs it holds (answered
                 with a run: wants_served), at its head + 1 and at the
                 largest seq (nothing to give)
  want-foreign   WANT for origins the node holds nothing of (the fake peer's
                 and a made-up one)
  want-bad       WANTs the decoder refuses: from 0, from 2^48, one byte short,
                 one byte long, the type byte alone
  want-flood     250 WANTs in one session: past the 240 a peer may send per
                 minute (the target's clock stands still within an input),
                 so the last ones count rejected_want_quota
  fork-badsig-*  FORK messages well formed in shape (two proofs of ops of
                 the origin from `seq`, decodable, linked) with signatures the
                 fuzzer cannot make: the node counts fork_evidence_bad and
                 closes the session; the frames after it meet a closed
                 session. For the node's own origin at its head (one op per
                 proof), from seq 2 (two linked ops per proof), and for an
                 origin it does not hold (the origin quota path)
  fork-short     a FORK shorter than its header (VS_ERR_TRUNCATED: the
                 session stays), then a header alone (evidence that does not
                 verify: fork_evidence_bad, the session closes)
  fork-cut       a well-shaped FORK cut inside its second proof
  fork-trailing  a well-shaped FORK with five bytes after its second proof
  fork-seq0, fork-noops, fork-alien
                 FORKs whose framing is wrong: seq 0, a proof of 0 ops, an
                 op of another origin (each closes the session)
  vv-fork        a VV whose entry for the node's own origin has the node's
                 seq with a head not its own: the node suspects a fork and
                 starts a search (sends a WANT: wants_sent)
  vv-fork-answer the same, then the answers an honest peer holding the
                 node's chain gives: its ops 2 and 3 (held: applied as
                 duplicates, no signature needed), which move the search
                 up and end it; then a new vector with another head and an
                 answer that is not held and not signed (runs_forged: the
                 search ends)
  vv-same-head   a VV whose entry for the node's own origin matches its
                 head: no search

What the seeds need of the target (tests/fuzz_node_frame.c, setup_once):
the node's identity is the seed of 32 bytes 0x01, the fake peer's 32 bytes
0x02; each node writes three ops {"put", "k", "v"} at now 1000, 1001,
1002 ms on a fresh store, so its chain is known: seq 1..3, hlc = now << 16,
prev linking them. This script derives the public keys (Ed25519, below) and
the op encodings and hashes (include/vixsync/op.h) itself; it signs
nothing. Should the target's setup change, run the replay with the debug
counters (wants_sent, wants_served) to see whether the seeds still reach
their paths.
"""

import hashlib
import os
import sys

# ---- Ed25519 public key from a seed (RFC 8032, 5.1.5) ----

P = 2**255 - 19
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def _recover_x(y, sign):
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P != 0:
        x = x * SQRT_M1 % P
    if x & 1 != sign:
        x = P - x
    return x


_GY = 4 * pow(5, P - 2, P) % P
_GX = _recover_x(_GY, 0)
G = (_GX, _GY, 1, _GX * _GY % P)


def _add(a, b):
    aa = (a[1] - a[0]) * (b[1] - b[0]) % P
    bb = (a[1] + a[0]) * (b[1] + b[0]) % P
    cc = 2 * a[3] * b[3] * D % P
    dd = 2 * a[2] * b[2] % P
    e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _mul(s, pt):
    q = (0, 1, 1, 0)
    while s:
        if s & 1:
            q = _add(q, pt)
        pt = _add(pt, pt)
        s >>= 1
    return q


def public_key(seed):
    h = hashlib.sha512(seed).digest()
    a = int.from_bytes(h[:32], "little") & ((1 << 254) - 8) | (1 << 254)
    x, y, z, _ = _mul(a, G)
    zi = pow(z, P - 2, P)
    x, y = x * zi % P, y * zi % P
    return (y | (x & 1) << 255).to_bytes(32, "little")


# ---- the node's chain (op.h) ----

NODE = public_key(bytes([1]) * 32)
FAKE = public_key(bytes([2]) * 32)
OTHER = bytes(range(0x80, 0xA0))  # an origin nobody holds
SEQ_MAX = (1 << 48) - 1


def u32(v):
    return v.to_bytes(4, "little")


def u64(v):
    return v.to_bytes(8, "little")


def op_encode(origin, seq, hlc, prev, kind=b"put", target=b"k", payload=b"v"):
    return (b"\x01\x00" + origin + u64(seq) + u64(hlc) + prev + bytes([len(kind)]) + kind + u32(len(target)) + target +
            u32(len(payload)) + payload)


def op_hash(enc):
    return hashlib.blake2b(b"vixsync/op-hash/v1" + enc, digest_size=32).digest()


def node_chain():
    """The encodings and hashes of the node's three ops (setup_once)."""
    encs, hashes, prev = [], [], bytes(32)
    for i in range(3):
        enc = op_encode(NODE, i + 1, (1000 + i) << 16, prev)
        encs.append(enc)
        hashes.append(op_hash(enc))
        prev = hashes[-1]
    return encs, hashes


ENCS, HASHES = node_chain()

# ---- messages (wire.h) ----


def want(origin, frm):
    return b"\x04" + origin + u64(frm)


def vv(vector, entries, part=0, parts=1):
    body = b"\x01" + u64(vector) + u32(part) + u32(parts) + u64(0) + u32(len(entries))
    for origin, seq, head in entries:
        body += origin + u64(seq) + head
    return body


def proof(sig, encs):
    return sig + u32(len(encs)) + b"".join(u32(len(e)) + e for e in encs)


def fork(origin, seq, proof_a, proof_b):
    return b"\x03" + origin + u64(seq) + proof_a + proof_b


def var(v):
    """LEB128, the shortest form (wire v7)."""
    out = b""
    while v >= 0x80:
        out += bytes([v & 0x7F | 0x80])
        v >>= 7
    return out + bytes([v])


def zigzag(d):
    """zigzag of the difference d mod 2^64, taken as signed."""
    d &= (1 << 64) - 1
    return (~(d << 1) if d >> 63 else d << 1) & ((1 << 64) - 1)


def op_parts(enc):
    """seq, hlc, prev, kind, target, payload of an encoding (op.h)."""
    seq, hlc, prev = int.from_bytes(enc[34:42], "little"), int.from_bytes(enc[42:50], "little"), enc[50:82]
    k = enc[82]
    kind, pos = enc[83:83 + k], 83 + k
    t = int.from_bytes(enc[pos:pos + 4], "little")
    target, pos = enc[pos + 4:pos + 4 + t], pos + 4 + t
    p = int.from_bytes(enc[pos:pos + 4], "little")
    return seq, hlc, prev, kind, target, enc[pos + 4:pos + 4 + p]


def ops_msg(origin, sig, encs):
    """An OPS message of one run, as wire v7 lays it out (src/wire_msg.c):
    [2][varint runs][origin][varint ops][sig][varint first seq][prev][hlc u64]
    then per op [u8 k][kind, or k = 0: the previous op's][varint zigzag(hlc
    delta), past the first op][varint target length][target][varint payload
    length][payload]. The receiver rebuilds each op's encoding (seq = first
    + i, prev = the hash of op i - 1): the ops must be of `origin`, with
    consecutive seqs and linked, or the seed would say something else."""
    parts = [op_parts(e) for e in encs]
    seq0, hlc0, prev0 = parts[0][0], parts[0][1], parts[0][2]
    out = b"\x02" + var(1) + origin + var(len(encs)) + sig + var(seq0) + prev0 + u64(hlc0)
    for i, (seq, hlc, prev, kind, target, payload) in enumerate(parts):
        assert encs[i][2:34] == origin and seq == seq0 + i and (i == 0 or prev == op_hash(encs[i - 1]))
        same = i > 0 and kind == parts[i - 1][3]
        out += bytes([0 if same else len(kind)]) + (b"" if same else kind)
        if i > 0:
            out += var(zigzag(hlc - parts[i - 1][1]))
        out += var(len(target)) + target + var(len(payload)) + payload
    return out


def branch(origin, seq, prev, count, tag):
    """`count` linked ops of `origin` from `seq` on, after `prev`."""
    encs = []
    for i in range(count):
        enc = op_encode(origin, seq + i, (1500 + i) << 16, prev, payload=tag + bytes([i]))
        encs.append(enc)
        prev = op_hash(enc)
    return encs


def session(*msgs):
    """An odd input: each message the plaintext of one DATA frame."""
    out = b"\x01"
    for m in msgs:
        assert len(m) <= 0xFFFF
        out += len(m).to_bytes(2, "little") + m
    return out


SIG_A = bytes([0x5A]) * 64
SIG_B = bytes(range(64))
BAD_HEAD = bytes.fromhex("0123456789abcdef")


def seeds():
    s = {}
    s["want-held"] = session(want(NODE, 1), want(NODE, 2), want(NODE, 3), want(NODE, 4), want(NODE, SEQ_MAX))
    s["want-foreign"] = session(want(FAKE, 1), want(OTHER, 7))
    w = want(NODE, 1)
    s["want-bad"] = session(want(NODE, 0), want(NODE, SEQ_MAX + 1), w[:-1], w + b"\x00", b"\x04")
    s["want-flood"] = session(want(NODE, 1), *[want(OTHER, 1 + i) for i in range(245)], want(NODE, 2), want(NODE, 3),
                              want(NODE, 1), want(FAKE, 1))
    # Evidence against the node's own origin at its head: both branches part
    # at seq 3 after its op 2 (so a verified one would void op 3).
    own_a = proof(SIG_A, branch(NODE, 3, HASHES[1], 1, b"a"))
    own_b = proof(SIG_B, branch(NODE, 3, HASHES[1], 1, b"b"))
    s["fork-badsig-own"] = session(fork(NODE, 3, own_a, own_b), want(NODE, 1))
    s["fork-badsig-own2"] = session(
        fork(NODE, 2, proof(SIG_A, branch(NODE, 2, HASHES[0], 2, b"a")), proof(SIG_B, branch(NODE, 2, HASHES[0], 2, b"b"))),
        vv(1, [(NODE, 3, HASHES[2][:8])]))
    s["fork-badsig-new"] = session(
        fork(OTHER, 1, proof(SIG_A, branch(OTHER, 1, bytes(32), 1, b"a")), proof(SIG_B, branch(OTHER, 1, bytes(32), 1, b"b"))))
    full = fork(NODE, 3, own_a, own_b)
    s["fork-short"] = session(full[:30], full[:1 + 32 + 8], want(NODE, 1))
    s["fork-cut"] = session(full[:len(full) - 20])
    s["fork-trailing"] = session(full + b"\x00\x01\x02\x03\x04")
    s["fork-seq0"] = session(fork(NODE, 0, own_a, own_b))
    s["fork-noops"] = session(fork(NODE, 3, own_a, SIG_B + u32(0)))
    s["fork-alien"] = session(fork(NODE, 3, own_a, proof(SIG_B, branch(FAKE, 3, HASHES[1], 1, b"b"))))
    s["vv-fork"] = session(vv(1, [(NODE, 3, BAD_HEAD)]))
    s["vv-fork-answer"] = session(
        vv(1, [(NODE, 3, BAD_HEAD)]),            # search [0, 3]: WANT 2
        ops_msg(NODE, bytes(64), [ENCS[1]]),     # held op 2: lo = 2, WANT 3
        ops_msg(NODE, bytes(64), [ENCS[2]]),     # held op 3: not below hi, the search ends
        vv(2, [(NODE, 3, bytes(8))]),            # another head: a new search, WANT 2
        ops_msg(NODE, SIG_A, branch(NODE, 2, HASHES[0], 1, b"x")))  # not held, not signed: it ends
    s["vv-same-head"] = session(vv(1, [(FAKE, 1, bytes(8)), (NODE, 3, HASHES[2][:8])]) if FAKE < NODE else
                                vv(1, [(NODE, 3, HASHES[2][:8]), (FAKE, 1, bytes(8))]))
    return s


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    corpus = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "corpus")
    for name, data in seeds().items():
        sha = hashlib.sha1(data).hexdigest()
        with open(os.path.join(corpus, sha), "wb") as f:
            f.write(data)
        print(f"{sha} {name} ({len(data)} bytes)")


if __name__ == "__main__":
    main()
