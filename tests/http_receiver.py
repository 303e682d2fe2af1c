#!/usr/bin/env python3
"""Reference receiver for vixsync's HTTP transport (tests, examples, README).

Standard library only. It stores what it receives, deduplicates by
Idempotency-Key and by operation id, and can be told to fail, stall, answer
429 with Retry-After, or drop the connection.

  python3 tests/http_receiver.py [--host 127.0.0.1] [--port 0] [--store FILE]
          [--tls-cert PEM --tls-key PEM] [--chaos RATE] [--seed N] [--stall-ms MS]
          [--script JSON]   (as a POST to /_script, before the first request)

Prints "PORT <n>" as its first line once it listens (--port 0 picks a free
port). With --store FILE what it stored and the answers it keeps for
idempotency keys survive a restart (a killed receiver restarted on the same
file holds every operation once).

Endpoints
  POST <path>      a batch (application/json, or application/vnd.vixsync.batch:
                   version u8 = 2, 3 reserved, count u32le, then per op
                   24-byte id, u32le length, the op's canonical encoding;
                   JSON "version": 2; any other version is a 400 naming
                   both, e.g. "batch version 1, this receiver reads 2").
                   Answers 200 {"stored": n, "duplicates": m}; when an op is
                   not accepted (see reject_prefix, retry_prefix) or per_op is
                   set, the answer lists "results": [{"id", "status", "reason"}].
                   A repeated Idempotency-Key gets the first final answer
                   again and stores nothing.
  GET|HEAD /health 200 "ok", or the scripted health status.
  GET /_stats      counters (JSON).
  GET /_ops        stored op ids, one per line, in arrival order.
  POST /_script    JSON, every member optional:
                   {"queue": [action, ...],   the next requests, in order:
                      {"status": 503, "retry_after": "1", "body": "..."}  answer so, store nothing
                      {"action": "drop"}        read the request, close without answering
                      {"action": "drop_after"}  store it, then close without answering
                      {"action": "stall", "ms": 500}  wait, then handle it normally
                      {"action": "pass"}        handle it normally
                    "chaos": 0.2, "seed": 1,  that share of requests fails in a mixed way
                    "stall_ms": 400,          how long a chaos stall lasts
                    "reject_prefix": "bad:",  ops whose target starts so: "failed"
                    "retry_prefix": "slow:",  ... "retry" the first time, then stored
                    "per_op": true,           always list per-op results
                    "health": 503}            the status /health answers
"""
import argparse
import base64
import hashlib
import json
import os
import random
import socket
import ssl
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

IDEM_DOMAIN = b"vixsync/http-idempotency/v2"
BATCH_VERSION = 2   # 2: 24-byte op ids (include/vixsync/op.h, op-id v2)
OP_ID_BYTES = 24
BINARY_TYPE = "application/vnd.vixsync.batch"
CHAOS_MIX = [
    {"status": 500, "body": "chaos: internal error"},
    {"status": 503, "retry_after": "0", "body": "chaos: unavailable"},
    {"status": 429, "retry_after": "0", "body": "chaos: slow down"},
    {"status": 408, "body": "chaos: request timeout"},
    {"action": "drop"},
    {"action": "drop_after"},
    {"action": "stall"},
]


def expected_key(ids):
    h = hashlib.blake2b(digest_size=16)
    h.update(IDEM_DOMAIN)
    h.update(struct.pack("<I", len(ids)))
    for i in sorted(ids):
        h.update(i)
    return "vx%d-" % BATCH_VERSION + h.hexdigest()


def binary_ops(body):
    """[(id bytes, target bytes)] from the binary batch encoding."""
    if len(body) < 8:
        raise ValueError("bad binary batch header")
    if body[0] != BATCH_VERSION:
        raise ValueError("batch version %d, this receiver reads %d" % (body[0], BATCH_VERSION))
    (count,) = struct.unpack_from("<I", body, 4)
    at, ops = 8, []
    for _ in range(count):
        op_id = body[at:at + OP_ID_BYTES]
        (n,) = struct.unpack_from("<I", body, at + OP_ID_BYTES)
        enc = body[at + OP_ID_BYTES + 4:at + OP_ID_BYTES + 4 + n]
        if len(op_id) != OP_ID_BYTES or len(enc) != n or n < 88:
            raise ValueError("truncated binary batch")
        kind_bytes = enc[82]
        (tn,) = struct.unpack_from("<I", enc, 83 + kind_bytes)
        ops.append((op_id, enc[87 + kind_bytes:87 + kind_bytes + tn]))
        at += OP_ID_BYTES + 4 + n
    if at != len(body):
        raise ValueError("trailing bytes in binary batch")
    return ops


def json_ops(body):
    doc = json.loads(body)
    if doc.get("version") != BATCH_VERSION:
        raise ValueError("batch version %s, this receiver reads %d" % (doc.get("version"), BATCH_VERSION))
    ops = []
    for op in doc["ops"]:
        if "target" in op:
            target = op["target"].encode()
        else:
            target = base64.b64decode(op.get("target_b64", ""))
        op_id = bytes.fromhex(op["id"])
        if len(op_id) != OP_ID_BYTES:
            raise ValueError("op id of %d bytes, this receiver reads %d" % (len(op_id), OP_ID_BYTES))
        ops.append((op_id, target))
    return ops


class State:
    def __init__(self, store_path, chaos, seed, stall_ms):
        self.lock = threading.Lock()
        self.ops = {}        # id hex -> times stored (always 1)
        self.order = []      # id hex, arrival order
        self.seen_retry = set()
        self.keys = {}       # idempotency key -> (status, body bytes)
        self.queue = []
        self.chaos = chaos
        self.rng = random.Random(seed)
        self.stall_ms = stall_ms
        self.reject_prefix = None
        self.retry_prefix = None
        self.per_op = False
        self.health = 200
        self.stats = {k: 0 for k in (
            "requests", "batches", "ops_received", "ops_stored", "ops_redelivered", "ops_rejected",
            "ops_retry", "dup_keys", "bad_keys", "unsorted", "scripted", "chaos", "dropped", "stalled",
            "health_checks", "bad_bodies", "restored_ops")}
        self.last = {"content_type": "", "authorization": "", "user_agent": "", "key": ""}
        self.store = None
        if store_path:
            self.load(store_path)
            self.store = open(store_path, "a", encoding="utf-8")

    def load(self, path):
        try:
            f = open(path, encoding="utf-8")
        except FileNotFoundError:
            return
        with f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue  # a line cut by a kill: its request was never answered
                if "op" in rec and rec["op"] not in self.ops:
                    self.ops[rec["op"]] = 1
                    self.order.append(rec["op"])
                    self.stats["restored_ops"] += 1
                elif "key" in rec:
                    self.keys[rec["key"]] = (rec["status"], rec["body"].encode())

    def log(self, rec):
        if self.store:
            self.store.write(json.dumps(rec) + "\n")

    def next_action(self):
        if self.queue:
            self.stats["scripted"] += 1
            return self.queue.pop(0)
        if self.chaos > 0 and self.rng.random() < self.chaos:
            self.stats["chaos"] += 1
            return dict(self.rng.choice(CHAOS_MIX))
        return None

    def ingest(self, key, ops):
        """Store a batch under the lock; (status, body bytes)."""
        results, stored, dups, final = [], 0, 0, True
        for op_id, target in ops:
            h = op_id.hex()
            self.stats["ops_received"] += 1
            if self.reject_prefix is not None and target.startswith(self.reject_prefix):
                self.stats["ops_rejected"] += 1
                results.append({"id": h, "status": "failed", "reason": "target is on the reject list"})
                continue
            if self.retry_prefix is not None and target.startswith(self.retry_prefix) \
                    and h not in self.seen_retry:
                self.seen_retry.add(h)
                self.stats["ops_retry"] += 1
                final = False
                results.append({"id": h, "status": "retry", "reason": "come back later", "retry_after_ms": 0})
                continue
            if h in self.ops:
                dups += 1
                self.stats["ops_redelivered"] += 1
            else:
                self.ops[h] = 1
                self.order.append(h)
                stored += 1
                self.stats["ops_stored"] += 1
                self.log({"op": h})
            results.append({"id": h, "status": "done"})
        doc = {"stored": stored, "duplicates": dups}
        if self.per_op or any(r["status"] != "done" for r in results):
            doc["results"] = results
        body = json.dumps(doc).encode()
        if key and final:  # an answer asking for a retry is not replayed
            self.keys[key] = (200, body)
            self.log({"key": key, "status": 200, "body": body.decode()})
        if self.store:
            self.store.flush()
        return 200, body


STATE = None


def apply_script(doc):
    with STATE.lock:
        if "queue" in doc:
            STATE.queue = list(doc["queue"])
        if "chaos" in doc:
            STATE.chaos = float(doc["chaos"])
        if "seed" in doc:
            STATE.rng = random.Random(doc["seed"])
        for name in ("reject_prefix", "retry_prefix"):
            if name in doc:
                v = doc[name]
                setattr(STATE, name, v.encode() if v is not None else None)
        for name in ("per_op", "health", "stall_ms"):
            if name in doc:
                setattr(STATE, name, doc[name])


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "vixsync-receiver/1"
    disable_nagle_algorithm = True  # headers and body leave at once, no 40 ms delayed-ACK stall

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, body, ctype="application/json", extra=None, head=False):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def drop(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def do_HEAD(self):
        self.do_GET(head=True)

    def do_GET(self, head=False):
        path = self.path.split("?")[0]
        if path == "/health":
            with STATE.lock:
                STATE.stats["health_checks"] += 1
                status = STATE.health
            self.reply(status, b"ok\n" if status < 400 else b"unhealthy\n", "text/plain", head=head)
        elif path == "/_stats":
            with STATE.lock:
                doc = dict(STATE.stats)
                doc.update(STATE.last)
                doc["ops_held"] = len(STATE.ops)
                doc["max_applied"] = max(STATE.ops.values(), default=0)
                doc["keys"] = len(STATE.keys)
            self.reply(200, json.dumps(doc).encode(), head=head)
        elif path == "/_ops":
            with STATE.lock:
                body = "".join(h + "\n" for h in STATE.order).encode()
            self.reply(200, body, "text/plain", head=head)
        else:
            self.reply(404, b"not found\n", "text/plain", head=head)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        if self.path.split("?")[0] == "/_script":
            apply_script(json.loads(body or b"{}"))
            self.reply(200, b"{}")
            return
        key = self.headers.get("Idempotency-Key", "")
        ctype = self.headers.get("Content-Type", "")
        with STATE.lock:
            STATE.stats["requests"] += 1
            STATE.last.update(content_type=ctype, key=key,
                              authorization=self.headers.get("Authorization", ""),
                              user_agent=self.headers.get("User-Agent", ""),
                              headers=dict(self.headers.items()))
            action = STATE.next_action()
            stall_ms = STATE.stall_ms
        if action and action.get("action") == "drop":
            with STATE.lock:
                STATE.stats["dropped"] += 1
            self.drop()
            return
        if action and action.get("action") == "stall":
            with STATE.lock:
                STATE.stats["stalled"] += 1
            time.sleep(action.get("ms", stall_ms) / 1000.0)
        if action and "status" in action:
            extra = {"Retry-After": action["retry_after"]} if "retry_after" in action else None
            self.reply(action["status"], action.get("body", "scripted failure").encode(), "text/plain", extra)
            return
        try:
            ops = binary_ops(body) if ctype.startswith(BINARY_TYPE) else json_ops(body)
        except (ValueError, KeyError, TypeError, struct.error) as e:
            with STATE.lock:
                STATE.stats["bad_bodies"] += 1
            self.reply(400, ("malformed batch: %s" % e).encode(), "text/plain")
            return
        ids = [i for i, _ in ops]
        with STATE.lock:
            STATE.stats["batches"] += 1
            if key != expected_key(ids):
                STATE.stats["bad_keys"] += 1
            if ids != sorted(ids):
                STATE.stats["unsorted"] += 1
            if key in STATE.keys:
                STATE.stats["dup_keys"] += 1
                status, answer = STATE.keys[key]
            else:
                status, answer = STATE.ingest(key, ops)
        if action and action.get("action") == "drop_after":
            with STATE.lock:
                STATE.stats["dropped"] += 1
            self.drop()
            return
        self.reply(status, answer)


def exit_with_parent():
    """A receiver outlives nobody: when the process that started it dies
    (a crashed test), it exits too, and nothing waits on its pipes."""
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(0.2)
    os._exit(0)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        pass  # clients that went away (stalls, drops) are expected here


def main():
    global STATE
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--store")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--chaos", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--stall-ms", type=int, default=400)
    ap.add_argument("--script")
    args = ap.parse_args()
    STATE = State(args.store, args.chaos, args.seed, args.stall_ms)
    if args.script:
        apply_script(json.loads(args.script))
    server = Server((args.host, args.port), Handler)
    threading.Thread(target=exit_with_parent, daemon=True).start()
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    try:  # one write: a reader may stop at the newline and close the pipe
        sys.stdout.write("PORT %d\n" % server.server_address[1])
        sys.stdout.flush()
    except BrokenPipeError:
        pass
    try:
        server.serve_forever(poll_interval=0.05)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
