#!/usr/bin/env python3
"""Migrate the fuzz corpus of tests/fuzz_node_frame.c from wire v2 to wire v3.

Usage: python3 tests/fuzz/migrate_v3.py [--forks-field] [CORPUS_DIR]   (default: tests/fuzz/corpus)

Rewrites the corpus in place. An input is [selector byte] then frames, each
[u16 LE length][bytes] (a length past the end of the input takes the rest),
read exactly as the fuzz target reads them (see its header comment):

* even selector (raw frames on a fresh connection): a frame whose first byte
  (the wire version) is 2 gets 3. Frames of any other version are left as
  they are: they test the refusal of foreign versions.
* odd selector (the plaintexts of DATA frames inside a session): a VV
  message of wire v2, [1][vector u64][part u32][parts u32][u32 n] then
  exactly n entries of 40 bytes (origin 32, seq u64), gets the 8 head bytes
  of wire v3 appended to every entry (48 bytes each), and its u16 length
  prefix is fixed. Head bytes are deterministic: entries alternate between
  zeros and a byte pattern (see head_bytes), so half the heads differ from
  any real one and half are zero. The header also gains wire v3's forks
  digest (u64, zero) before the count: [1][vector][part][parts][forks][n].
* --forks-field: only that last step, for a corpus migrated before the
  digest joined the header: a VV message of exactly 21 + 48 n bytes gets 8
  zero bytes at offset 17 (29 + 48 n; the two sizes never collide).

Anything that does not parse as such (another message type, a VV message of
another size, a frame too long for a u16 once grown) is left unchanged.
Frames past the target's frame limit are migrated too (harmless).

Files named by the SHA-1 of their content (the libFuzzer convention) are
renamed to the SHA-1 of their new content; files with other names are hand
written seeds: they keep their name. KEEP lists the hand-written seeds that
are not migrated: raw-version2 is a frame of version 2, which a v3 node
refuses (VS_ERR_VERSION, version_seen 2), so it stays as it is.

Run it once, on the v2 corpus: a second run finds nothing to do in what it
migrated (no v2 frame left in even inputs; a v3 VV message of n entries is
21 + 48 n bytes, never 21 + 40 n), but it would also rewrite any v2 frame
added since to test the refusal of v2 peers.
"""

import hashlib
import os
import sys

VV_HEADER = 1 + 8 + 4 + 4 + 4  # v2: type, vector, part, parts, count
FORKS_AT = 17  # v3 inserts the forks digest (u64) here, before the count
V2_ENTRY = 32 + 8
HEAD = 8
KEEP = {"raw-version2"}


def frames(data):
    """(offset of the length prefix, frame bytes) for each frame, as the target splits them."""
    out = []
    pos = 1
    while pos + 2 <= len(data):
        length = data[pos] | data[pos + 1] << 8
        start = pos + 2
        length = min(length, len(data) - start)
        out.append((pos, data[start:start + length]))
        pos = start + length
    return out


def head_bytes(k):
    """The k-th appended head of a file: zeros or a pattern, alternately."""
    if k % 2 == 0:
        return bytes(HEAD)
    return bytes((0xA5 + 29 * k + 7 * j) & 0xFF for j in range(HEAD))


def migrate_vv(frame, k):
    """The v3 form of a v2 VV message (and the next head index), or None."""
    if len(frame) < VV_HEADER or frame[0] != 1:
        return None, k
    n = int.from_bytes(frame[VV_HEADER - 4:VV_HEADER], "little")
    if n == 0 or len(frame) != VV_HEADER + n * V2_ENTRY:
        return None, k  # not a v2 VV message with entries: unchanged
    body = bytearray(frame[:FORKS_AT]) + bytes(8) + frame[FORKS_AT:VV_HEADER]
    for i in range(n):
        body += frame[VV_HEADER + i * V2_ENTRY:VV_HEADER + (i + 1) * V2_ENTRY]
        body += head_bytes(k)
        k += 1
    if len(body) > 0xFFFF:
        return None, k
    return bytes(body), k


def add_forks(frame, k):
    """A VV message of the early v3 header (no forks digest) with it, or None."""
    if len(frame) < VV_HEADER or frame[0] != 1:
        return None, k
    n = int.from_bytes(frame[VV_HEADER - 4:VV_HEADER], "little")
    if n == 0 or len(frame) != VV_HEADER + n * (V2_ENTRY + HEAD) or len(frame) + 8 > 0xFFFF:
        return None, k
    return frame[:FORKS_AT] + bytes(8) + frame[FORKS_AT:], k


FORKS_ONLY = False


def migrate(data, parity):
    """The migrated input, or None when nothing changes."""
    if not data:
        return None
    odd = data[0] & 1
    out = bytearray(data[:1])
    changed = False
    k = parity  # heads alternate across the file, starting per file
    prev_end = 1
    for pos, frame in frames(data):  # back to back from offset 1
        new = None
        if odd:
            new, k = (add_forks if FORKS_ONLY else migrate_vv)(frame, k)
        elif frame and frame[0] == 2 and not FORKS_ONLY:
            new = b"\x03" + frame[1:]
        if new is None:
            new_len = data[pos] | data[pos + 1] << 8  # as it was (a last frame may claim more)
            out += data[pos:pos + 2] + frame
        else:
            new_len = len(new) if len(new) != len(frame) else data[pos] | data[pos + 1] << 8
            out += new_len.to_bytes(2, "little") + new
            changed = True
        prev_end = pos + 2 + len(frame)
    out += data[prev_end:]  # a lone trailing byte (no room for a length)
    assert changed or bytes(out) == data
    return bytes(out) if changed else None


def main():
    global FORKS_ONLY
    args = sys.argv[1:]
    if args and args[0] == "--forks-field":
        FORKS_ONLY = True
        args = args[1:]
    here = os.path.dirname(os.path.abspath(__file__))
    corpus = args[0] if args else os.path.join(here, "corpus")
    rewritten = renamed = same = 0
    for name in sorted(os.listdir(corpus)):
        path = os.path.join(corpus, name)
        if name.startswith(".") or name in KEEP or not os.path.isfile(path):
            continue
        with open(path, "rb") as f:
            data = f.read()
        old_sha = hashlib.sha1(data).hexdigest()
        new = migrate(data, int(old_sha[-1], 16) & 1)
        if new is None:
            same += 1
            continue
        rewritten += 1
        target = path
        if name == old_sha:  # libFuzzer's name: follow the content
            target = os.path.join(corpus, hashlib.sha1(new).hexdigest())
        with open(target, "wb") as f:
            f.write(new)
        if target != path:
            os.remove(path)
            renamed += 1
    print(f"{corpus}: {rewritten} inputs migrated to wire v3 ({renamed} renamed), {same} unchanged, "
          f"{len(os.listdir(corpus))} files")


if __name__ == "__main__":
    main()
