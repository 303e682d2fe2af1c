/* vixsync: the HTTP transport, a vs_transport over libcurl's multi interface.
 *
 * Its own library: link libvixsync-http (pkg-config vixsync-http, which
 * brings libvixsync and libcurl); libvixsync itself links no libcurl and
 * opens no socket.
 *
 * Each batch the engine sends becomes one POST to a configured URL. libcurl's
 * multi interface runs the requests without blocking: `send` only queues a
 * request, and the transport's `poll` (called by the engine on every tick)
 * lets libcurl move bytes and turns finished requests into results. The
 * transport never reads a clock: it takes `now_ms` from the engine (a
 * Retry-After date is converted against it). libcurl's own connect and
 * total timeouts bound every request. Between ticks the driver sleeps in
 * vs_http_transport_wait, which returns as soon as a socket is ready, and
 * lets libcurl move bytes with vs_http_transport_perform (the loop is shown
 * there). Host names resolve in libcurl's resolver thread (Debian's libcurl
 * is built with AsynchDNS), so no call blocks on DNS either.
 *
 * The body (a pure function of the batch's set of operations):
 *
 *   JSON (default), Content-Type: application/json
 *     {"version":2,"idempotency_key":"vx2-...","ops":[
 *       {"id":"<48 hex>","origin":"<64 hex>","seq":N,"hlc":N,"kind":"put",
 *        "target":"...","value":"..."}, ...]}
 *     ops in ascending id order; target and value are JSON strings when
 *     they are UTF-8, else "target_b64" / "value_b64" (standard base64).
 *
 *   binary (VS_HTTP_FORMAT_BINARY), Content-Type: VS_HTTP_BINARY_CONTENT_TYPE
 *     0  1  version = 2      1  3  reserved = 0      4  4  op count (u32le)
 *     then per op, in ascending id order: 24 id, 4 encoded bytes (u32le),
 *     the operation's canonical encoding (op.h).
 *
 *   Version 2 (VS_HTTP_BATCH_VERSION) carries 24-byte op ids (op.h, op-id
 *   v2); version 1 carried 16-byte ids. A server reading only one version
 *   answers the other with a 4xx that names both (tests/http_receiver.py:
 *   400 "batch version 1, this receiver reads 2"); the op then turns FAILED
 *   with that reason, never silently misread.
 *
 * Every operation carries its id, so a server deduplicates per operation.
 * The Idempotency-Key header names the batch: "vx2-" and 32 lowercase hex of
 * BLAKE2b-128("vixsync/http-idempotency/v2" || count u32le || the ids in
 * ascending order): the same set of operations always gets the same key (a
 * retried batch, the same batch after a restart), whatever order it was
 * claimed in. It does not change with the attempt, so a server may answer
 * a repeated key with its first answer.
 *
 * Result mapping (each result names the configured peer and echoes the
 * attempt it answers):
 *
 *   2xx                   DONE for every op of the batch, unless the body is a
 *                         JSON object whose "results" member lists ops:
 *                         [{"id":"<48 hex>","status":"done"|"retry"|"failed",
 *                           "reason":"...","retry_after_ms":N}, ...]; then each
 *                         listed op gets its own result, and an op the list
 *                         leaves out gets RETRY (its delivery is not confirmed).
 *   408, 425, 429, 5xx    RETRY, reason "HTTP 503: <first bytes of the body>",
 *                         retry_after_ms from Retry-After (delta seconds or an
 *                         HTTP date, against now_ms). The outbox caps it at its
 *                         policy's max_delay_ms.
 *   connection failures,  RETRY (refused, unreachable, unresolvable host, reset,
 *   timeouts              no reply, TLS handshake errors): the endpoint may come
 *                         back; nothing in the request was wrong.
 *   other 4xx, 3xx        FAILED, reason "HTTP 422: <first bytes of the body>"
 *                         (redirects are not followed: a moved endpoint is a
 *                         configuration to fix).
 *   TLS certificate       FAILED, reason "TLS: <libcurl's message>" (untrusted,
 *   failures              expired or wrong-host certificates, a bad CA file).
 *
 * A FAILED entry stays FAILED until vs_outbox_retry_failed requeues it once
 * the cause is fixed. A result lost with the transport (freed with requests
 * in flight) is a lease that expires: the engine retries.
 *
 * The engine's lease_ms must outlast a request (connect_timeout_ms +
 * timeout_ms), or a slow request is retried while still in flight (harmless:
 * the server deduplicates, but it costs an attempt).
 *
 * Sinks. Each HTTP endpoint is its own outbox sink with its own delivery
 * state: an op is delivered to the mesh and to HTTP independently. Open it
 * with vs_outbox_open (registering the sink if new), then give it entries
 * for the operations written before it existed with vs_outbox_backfill
 * (outbox.h); the engine then drives that outbox over this transport.
 *
 * Threads: a transport is used from one thread (the driver's), except
 * vs_http_transport_wakeup. The program calls vs_http_global_init once
 * before creating transports and vs_http_global_cleanup once at exit.
 */
#ifndef VIXSYNC_HTTP_TRANSPORT_H
#define VIXSYNC_HTTP_TRANSPORT_H

#include "vixsync/api.h"

#include <stdbool.h>
#include <stdint.h>

#include "vixsync/error.h"
#include "vixsync/op.h"
#include "vixsync/probe.h"
#include "vixsync/retry.h"
#include "vixsync/transport.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VS_HTTP_BINARY_CONTENT_TYPE "application/vnd.vixsync.batch"
#define VS_HTTP_HEADERS_MAX 32u
#define VS_HTTP_HEADER_BYTES_MAX 8192u /**< one "Name: value" line */
#define VS_HTTP_URL_BYTES_MAX 8192u
#define VS_HTTP_REQUESTS_MAX 256u
#define VS_HTTP_BATCH_VERSION 2u /**< the body's version (byte 0, or JSON "version") */
#define VS_HTTP_IDEM_KEY_PREFIX "vx2-"   /**< "vx" VS_HTTP_BATCH_VERSION "-" */
#define VS_HTTP_IDEM_KEY_BYTES (4u + 32u + 1u) /**< "vx2-", 32 hex, NUL */
/** Body bytes quoted in a reason. */
#define VS_HTTP_REASON_BODY_BYTES 120u

typedef enum vs_http_format {
  VS_HTTP_FORMAT_JSON = 0,   /**< application/json (default) */
  VS_HTTP_FORMAT_BINARY = 1, /**< VS_HTTP_BINARY_CONTENT_TYPE */
} vs_http_format;

typedef struct vs_http_cfg {
  /** The size of the struct this program was compiled with, written by
   *  vs_http_cfg_default(&cfg): the library reads no more of it, so fields added
   *  later never break a compiled caller. Start every cfg from vs_http_cfg_default. */
  uint32_t cfg_bytes;
  const char *url;             /**< http:// or https:// URL the batches are POSTed to (copied) */
  vs_http_format format;       /**< default JSON */
  const char *const *headers;  /**< header_count "Name: value" lines sent with every request
                                    (e.g. "Authorization: Bearer ..."); copied. Content-Type,
                                    Content-Length and Idempotency-Key are the transport's. */
  uint32_t header_count;       /**< <= VS_HTTP_HEADERS_MAX */
  uint64_t connect_timeout_ms; /**< default 10,000 */
  uint64_t timeout_ms;         /**< whole request; default 20,000 */
  bool tls_verify;             /**< verify the certificate and host name; default true */
  const char *ca_file;         /**< PEM file of trusted CAs; NULL: the system's (copied) */
  uint32_t requests_max;       /**< requests in flight; send answers VS_ERR_BUSY past it;
                                    default 8, <= VS_HTTP_REQUESTS_MAX */
  uint64_t response_bytes_max; /**< response bytes kept (per-op results, reasons); the rest is
                                    read and dropped; default 1 MiB */
  uint32_t peer;               /**< peer id named in results (< VS_PEERS_MAX); default 0 */
} vs_http_cfg;

/** The defaults listed above, with url NULL (required); use it through
 *  vs_http_cfg_default(&cfg), which passes sizeof cfg (cfg_bytes). */
VS_API void vs_http_cfg_default_sized(vs_http_cfg *cfg, size_t cfg_bytes);
/** Fill `*cfg` (a vs_http_cfg) with the defaults and its cfg_bytes. */
#define vs_http_cfg_default(cfg) vs_http_cfg_default_sized((cfg), sizeof *(cfg))

typedef struct vs_http_stats {
  uint64_t requests;         /**< batches POSTed */
  uint64_t busy;             /**< sends refused: requests_max in flight */
  uint64_t bytes_sent;       /**< request bodies */
  uint64_t responses_2xx;
  uint64_t responses_retry;  /**< 408, 425, 429, 5xx and unexpected statuses */
  uint64_t responses_failed; /**< other 4xx and 3xx */
  uint64_t transport_errors; /**< connection failures and timeouts (RETRY) */
  uint64_t tls_failures;     /**< certificate failures (FAILED) */
  uint64_t results_done, results_retry, results_failed; /**< per op */
  uint64_t per_op_lists;     /**< 2xx responses that listed per-op results */
  uint64_t probes;           /**< health checks started */
  uint64_t probes_online;    /**< health checks that said online */
} vs_http_stats;

typedef struct vs_http_transport vs_http_transport;

/** Initialise libcurl (curl_global_init): once per program, before any
 *  transport. @return VS_OK or VS_ERR_NOMEM. */
VS_API vs_err vs_http_global_init(void);

/** Release libcurl's global state (curl_global_cleanup): once at exit, after
 *  every transport is freed. */
VS_API void vs_http_global_cleanup(void);

/** Create a transport. @return VS_OK, VS_ERR_INVAL (no URL or not http(s),
 *  a header without "Name:" or with CR/LF or naming a header the transport
 *  sets, a limit out of range, a cfg not started with vs_http_cfg_default)
 *  or VS_ERR_NOMEM. */
VS_API vs_err vs_http_transport_new(const vs_http_cfg *cfg, vs_http_transport **t_out);

/** Free the transport, abandoning requests in flight (their entries come back
 *  when their lease ends). NULL is a no-op. */
VS_API void vs_http_transport_free(vs_http_transport *t);

/** The vs_transport to give to an engine (valid while `t` lives). */
VS_API vs_transport vs_http_transport_iface(vs_http_transport *t);

/** For the driver, between ticks: wait until a socket of a request is ready,
 *  libcurl's next timeout, vs_http_transport_wakeup or timeout_ms, whichever
 *  comes first (a signal also ends it early). Never called by the engine.
 *  @return VS_OK, VS_ERR_INVAL (NULL, or libcurl refused) or VS_ERR_NOMEM. */
VS_API vs_err vs_http_transport_wait(vs_http_transport *t, uint64_t timeout_ms);

/** For the driver, after a wait: let libcurl move bytes (never blocks) and
 *  take the requests that ended. @return how many ended since the engine's
 *  last poll (batches and health checks): when it is not 0, tick the engine
 *  now. The transport's next_wake_ms does not count requests in flight, so
 *  a driver that never calls this makes no progress:
 *
 *    for (;;) {
 *      uint64_t now = wall_clock_ms();
 *      if (vs_http_transport_perform(t, now) > 0 || now >= wake)
 *        vs_engine_tick(engine, now, &wake);
 *      vs_http_transport_wait(t, wake > now ? wake - now : 0);
 *    } */
VS_API uint32_t vs_http_transport_perform(vs_http_transport *t, uint64_t now_ms);

/** End a vs_http_transport_wait early; safe from another thread. */
VS_API void vs_http_transport_wakeup(vs_http_transport *t);

/** Requests in flight (batches and health checks). */
VS_API uint32_t vs_http_transport_inflight(const vs_http_transport *t);

/** Counters since creation. */
VS_API void vs_http_transport_stats(const vs_http_transport *t, vs_http_stats *stats_out);

/** The Idempotency-Key of a batch of `count` (>= 1) operations whose ids are
 *  `ids` in ascending byte order (see the file comment). A pure function. */
VS_API void vs_http_idempotency_key(const vs_op_id *ids, uint32_t count, char key_out[VS_HTTP_IDEM_KEY_BYTES]);

/* ---- probe ---- */

typedef struct vs_http_probe_cfg {
  /** The size of the struct this program was compiled with, written by
   *  vs_http_probe_cfg_default(&cfg): the library reads no more of it, so fields
   *  added later never break a compiled caller. Start every cfg from
   *  vs_http_probe_cfg_default. */
  uint32_t cfg_bytes;
  const char *url;      /**< health URL (copied); the transport's headers and TLS settings apply */
  bool use_get;         /**< GET instead of HEAD */
  uint64_t interval_ms; /**< at most one check started per interval; default 5,000 */
  uint64_t timeout_ms;  /**< per check; default 5,000 */
} vs_http_probe_cfg;

/** The defaults listed above, with url NULL (required); use it through
 *  vs_http_probe_cfg_default(&cfg), which passes sizeof cfg (cfg_bytes). */
VS_API void vs_http_probe_cfg_default_sized(vs_http_probe_cfg *cfg, size_t cfg_bytes);
/** Fill `*cfg` (a vs_http_probe_cfg) with the defaults and its cfg_bytes. */
#define vs_http_probe_cfg_default(cfg) vs_http_probe_cfg_default_sized((cfg), sizeof *(cfg))

/** Attach a health check to the transport and give the vs_probe that reads
 *  it (valid while `t` lives; one probe per transport, a second call
 *  replaces its configuration).
 *
 *  online(now) never waits: it starts a check (HEAD, or GET) when none is in
 *  flight and the last one started at least interval_ms before now, and
 *  answers with the last verdict: online after a 2xx or 3xx answer; offline
 *  before the first answer, after any other status, a connection failure or
 *  a timeout. The transport's own traffic feeds it too: a batch that meets a
 *  connection failure turns it offline at once (so the engine stops spending
 *  attempts), a batch that gets any HTTP answer turns it online.
 *  @return VS_OK, VS_ERR_INVAL (no URL, not http(s), interval 0, a cfg not
 *  started with vs_http_probe_cfg_default) or VS_ERR_NOMEM. */
VS_API vs_err vs_http_transport_probe(vs_http_transport *t, const vs_http_probe_cfg *cfg, vs_probe *probe_out);

#ifdef __cplusplus
}
#endif
#endif
