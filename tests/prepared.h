/* Delivering a frame to a node in the tests: vt_node_on_frame is
 * vs_node_on_frame, or, when the including file is compiled with
 * -DVT_PREPARED=1, the receive pipeline of node.h (vs_node_rx_key,
 * vs_rx_prepare, vs_node_on_prepared). node.h promises the two have exactly
 * the same effect and result, so every node test builds twice (the targets
 * *_prepared in CMakeLists.txt) and each of its assertions pins the pipeline
 * as well.
 *
 * vt_deliver_prepared needs no test framework (the fuzz target uses it);
 * vt_node_on_frame fails a cmocka test when vs_rx_prepare does: include this
 * header after cmocka.h there. */
#ifndef VIXSYNC_TESTS_PREPARED_H
#define VIXSYNC_TESTS_PREPARED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "vixsync/error.h"
#include "vixsync/node.h"

#ifndef VT_PREPARED
#define VT_PREPARED 0
#endif

/* The pipeline, in one thread: the key of `peer`'s current session (none
 * before the handshake: the frame then goes unprepared), the pure work, the
 * node's half. Returns what vs_node_on_prepared returned; *prepare_err says
 * what vs_rx_prepare returned (not VS_OK: the frame was not delivered). */
static inline vs_err vt_deliver_prepared(vs_node *node, uint32_t peer, const uint8_t *bytes, size_t len,
                                         uint64_t now_ms, vs_err *prepare_err) {
  vs_rx_key key;
  bool have = vs_node_rx_key(node, peer, &key) == VS_OK;
  vs_rx_prep *prep = NULL;
  *prepare_err = vs_rx_prepare(have ? &key : NULL, bytes, len, &prep);
  sodium_memzero(&key, sizeof key); /* a session secret: node.h says wipe it */
  if (*prepare_err != VS_OK) return *prepare_err;
  vs_err err = vs_node_on_prepared(node, peer, prep, now_ms);
  vs_rx_prep_free(prep);
  return err;
}

#ifdef fail_msg /* cmocka.h included: a failed prepare fails the test */
static inline vs_err vt_node_on_frame(vs_node *node, uint32_t peer, const uint8_t *bytes, size_t len,
                                      uint64_t now_ms) {
#if VT_PREPARED
  vs_err prepare_err = VS_OK;
  vs_err err = vt_deliver_prepared(node, peer, bytes, len, now_ms, &prepare_err);
  if (prepare_err != VS_OK) fail_msg("vs_rx_prepare (%zu bytes): %s", len, vs_err_name(prepare_err));
  return err;
#else
  return vs_node_on_frame(node, peer, bytes, len, now_ms);
#endif
}
#endif

#endif
