/* Pins include/vixsync/wire.h: DATA sessions and their replay window (the
 * handshake is in test_wire.c). Hostile input is always fed as an
 * exact-size heap copy, so ASan catches any read past its end. */

#include "wire_fixture.h"

static void test_data_tampering_is_auth_and_leaves_window(void **state) {
  (void)state;
  conn c;
  conn_handshake(&c, &ID_A, &ID_B, 20);
  sealed f[2];
  seal_n(&c.si, f, 2);
  assert_err(open_one(&c.sr, &f[0]), VS_OK);
  vs_session before = c.sr;
  for (size_t at = 0; at < f[1].n; at++) {
    for (int bit = 0; bit < 8; bit += 7) {
      sealed t = f[1];
      t.f[at] ^= (uint8_t)(1u << bit);
      vs_err want = VS_ERR_AUTH; /* counter, ciphertext, tag */
      if (at == 0) want = VS_ERR_VERSION;
      if (at == 1) want = VS_ERR_MALFORMED; /* another frame type, or none */
      /* A counter bit flipped down to 0 names an accepted frame. */
      if (at >= 2 && at < 10 && vt_get_u64le(t.f + 2) == 0) want = VS_ERR_REPLAY;
      assert_err(open_one(&c.sr, &t), want);
      assert_memory_equal(&before, &c.sr, sizeof before);
    }
  }
  assert_err(open_one(&c.sr, &f[1]), VS_OK);
}

static void test_data_replay_of_accepted_frame_is_replay(void **state) {
  (void)state;
  conn c;
  conn_handshake(&c, &ID_A, &ID_B, 21);
  sealed f[3];
  seal_n(&c.si, f, 3);
  for (int k = 0; k < 3; k++) assert_err(open_one(&c.sr, &f[k]), VS_OK);
  vs_session before = c.sr;
  for (int k = 0; k < 3; k++) assert_err(open_one(&c.sr, &f[k]), VS_ERR_REPLAY);
  assert_memory_equal(&before, &c.sr, sizeof before);
}

static void test_data_reordered_within_window_accepted_once(void **state) {
  (void)state;
  conn c;
  conn_handshake(&c, &ID_A, &ID_B, 22);
  enum { N = 2 * VS_REPLAY_WINDOW };
  sealed *f = malloc(N * sizeof *f);
  assert_non_null(f);
  seal_n(&c.si, f, N);
  /* Blocks of 64 delivered backwards: the newest first, then every older
   * one still inside the window. */
  for (int b = 0; b < 2; b++) {
    for (int k = VS_REPLAY_WINDOW - 1; k >= 0; k--) assert_err(open_one(&c.sr, &f[b * VS_REPLAY_WINDOW + k]), VS_OK);
    for (int k = 0; k < (int)VS_REPLAY_WINDOW; k++)
      assert_err(open_one(&c.sr, &f[b * VS_REPLAY_WINDOW + k]), VS_ERR_REPLAY);
  }
  assert_int_equal(c.sr.rx_highest, N - 1);
  assert_true(c.sr.rx_window == UINT64_MAX);
  /* An interleaving: evens, then odds. */
  sealed g[16];
  seal_n(&c.si, g, 16);
  for (int k = 0; k < 16; k += 2) assert_err(open_one(&c.sr, &g[k]), VS_OK);
  for (int k = 1; k < 16; k += 2) assert_err(open_one(&c.sr, &g[k]), VS_OK);
  for (int k = 0; k < 16; k++) assert_err(open_one(&c.sr, &g[k]), VS_ERR_REPLAY);
  free(f);
}

static void test_data_older_than_window_is_replay(void **state) {
  (void)state;
  conn c;
  conn_handshake(&c, &ID_A, &ID_B, 23);
  enum { N = 101 };
  sealed *f = malloc(N * sizeof *f);
  assert_non_null(f);
  seal_n(&c.si, f, N);
  assert_err(open_one(&c.sr, &f[100]), VS_OK);
  vs_session before = c.sr;
  assert_err(open_one(&c.sr, &f[100 - VS_REPLAY_WINDOW]), VS_ERR_REPLAY); /* 64 back: outside */
  assert_err(open_one(&c.sr, &f[0]), VS_ERR_REPLAY);
  assert_memory_equal(&before, &c.sr, sizeof before);
  assert_err(open_one(&c.sr, &f[100 - VS_REPLAY_WINDOW + 1]), VS_OK); /* 63 back: inside */
  /* A jump past the whole window forgets everything before it. */
  sealed g[VS_REPLAY_WINDOW + 2];
  seal_n(&c.si, g, VS_REPLAY_WINDOW + 2);
  assert_err(open_one(&c.sr, &g[VS_REPLAY_WINDOW + 1]), VS_OK);
  assert_int_equal(c.sr.rx_window, 1);
  assert_err(open_one(&c.sr, &g[0]), VS_ERR_REPLAY);
  assert_err(open_one(&c.sr, &g[2]), VS_OK);
  free(f);
}

static void test_data_counters_per_direction_are_independent(void **state) {
  (void)state;
  conn c;
  conn_handshake(&c, &ID_A, &ID_B, 24);
  sealed a[3], b[2];
  seal_n(&c.si, a, 3);
  seal_n(&c.sr, b, 2);
  assert_int_equal(c.si.tx_counter, 3);
  assert_int_equal(c.sr.tx_counter, 2);
  for (int k = 0; k < 3; k++) assert_err(open_one(&c.sr, &a[k]), VS_OK);
  for (int k = 0; k < 2; k++) assert_err(open_one(&c.si, &b[k]), VS_OK);
  assert_int_equal(c.sr.rx_highest, 2);
  assert_int_equal(c.si.rx_highest, 1);
  /* A frame fed back to its sender (reflection) fails: other key. */
  sealed mine[1];
  seal_n(&c.si, mine, 1);
  assert_err(open_one(&c.si, &mine[0]), VS_ERR_AUTH);
  /* Another connection of the same two peers has other keys. */
  conn d;
  conn_handshake(&d, &ID_A, &ID_B, 25);
  assert_err(open_one(&d.sr, &mine[0]), VS_ERR_AUTH);
  assert_err(open_one(&c.sr, &mine[0]), VS_OK);
}

static void test_data_bounds_and_sizes(void **state) {
  (void)state;
  conn c;
  conn_handshake(&c, &ID_A, &ID_B, 26);
  sealed f[1];
  seal_n(&c.si, f, 1);
  vs_session before = c.sr;
  uint8_t msg[FRAME_MAX];
  size_t m = 0;
  for (size_t k = 0; k < VS_DATA_OVERHEAD_BYTES; k++)
    assert_err(open_exact(&c.sr, f[0].f, k, msg, sizeof msg, &m), VS_ERR_TRUNCATED);
  /* Longer or shorter ciphertexts are just forgeries. */
  for (size_t k = VS_DATA_OVERHEAD_BYTES; k < f[0].n; k++)
    assert_err(open_exact(&c.sr, f[0].f, k, msg, sizeof msg, &m), VS_ERR_AUTH);
  assert_err(open_exact(&c.sr, f[0].f, f[0].n + 1, msg, sizeof msg, &m), VS_ERR_AUTH);
  assert_err(open_exact(&c.sr, f[0].f, f[0].n, msg, f[0].n - VS_DATA_OVERHEAD_BYTES - 1, &m), VS_ERR_BUFSIZE);
  /* Handshake frames are not DATA. */
  assert_err(open_exact(&c.sr, c.hello, sizeof c.hello, msg, sizeof msg, &m), VS_ERR_MALFORMED);
  assert_memory_equal(&before, &c.sr, sizeof before);
  assert_err(open_one(&c.sr, &f[0]), VS_OK);

  /* The empty message, and the largest one. */
  uint8_t frame[64];
  size_t n = 0;
  assert_err(vs_session_seal(&c.si, NULL, 0, frame, VS_DATA_OVERHEAD_BYTES - 1, &n), VS_ERR_BUFSIZE);
  assert_err(vs_session_seal(&c.si, NULL, 0, frame, sizeof frame, &n), VS_OK);
  assert_int_equal(n, VS_DATA_OVERHEAD_BYTES);
  assert_err(open_exact(&c.sr, frame, n, NULL, 0, &m), VS_OK);
  assert_int_equal(m, 0);
  uint8_t *big = calloc(1, VS_FRAME_BYTES_MAX + 1), *plain = malloc(VS_FRAME_BYTES_MAX + 1);
  assert_non_null(big);
  assert_non_null(plain);
  fill(plain, VS_MSG_BYTES_MAX, 9);
  assert_err(vs_session_seal(&c.si, plain, VS_MSG_BYTES_MAX + 1, big, VS_FRAME_BYTES_MAX + 1, &n),
             VS_ERR_TOO_LARGE);
  assert_err(vs_session_seal(&c.si, plain, VS_MSG_BYTES_MAX, big, VS_FRAME_BYTES_MAX, &n), VS_OK);
  assert_int_equal(n, VS_FRAME_BYTES_MAX);
  assert_err(open_exact(&c.sr, big, n, plain, VS_MSG_BYTES_MAX, &m), VS_OK);
  assert_int_equal(m, VS_MSG_BYTES_MAX);
  big[0] = VS_WIRE_VERSION;
  big[1] = 4;
  assert_err(open_exact(&c.sr, big, VS_FRAME_BYTES_MAX + 1, plain, VS_FRAME_BYTES_MAX + 1, &m), VS_ERR_TOO_LARGE);
  free(big);
  free(plain);

  /* The last counter is never used: a nonce must not wrap. */
  vs_session s = c.si;
  s.tx_counter = UINT64_MAX;
  assert_err(vs_session_seal(&s, (const uint8_t *)"x", 1, frame, sizeof frame, &n), VS_ERR_LIMIT);
  s.tx_counter = UINT64_MAX - 1;
  assert_err(vs_session_seal(&s, (const uint8_t *)"x", 1, frame, sizeof frame, &n), VS_OK);
  assert_err(open_exact(&c.sr, frame, n, msg, sizeof msg, &m), VS_OK);
  assert_int_equal(c.sr.rx_highest, UINT64_MAX - 1);
}

static void test_data_open_halves_accept_what_session_open_accepts(void **state) {
  (void)state;
  conn c;
  conn_handshake(&c, &ID_A, &ID_B, 27);
  sealed f[4];
  seal_n(&c.si, f, 4);
  /* Valid frames, in order, then out of order, then replayed. */
  assert_err(halves_agree(&c.sr, f[0].f, f[0].n, FRAME_MAX), VS_OK);
  assert_err(open_one(&c.sr, &f[0]), VS_OK);
  assert_err(halves_agree(&c.sr, f[2].f, f[2].n, FRAME_MAX), VS_OK);
  assert_err(open_one(&c.sr, &f[2]), VS_OK);
  assert_err(halves_agree(&c.sr, f[1].f, f[1].n, FRAME_MAX), VS_OK);
  assert_err(halves_agree(&c.sr, f[0].f, f[0].n, FRAME_MAX), VS_ERR_REPLAY);
  assert_err(halves_agree(&c.sr, f[2].f, f[2].n, FRAME_MAX), VS_ERR_REPLAY);
  /* Every single-bit flip of a fresh frame, and of an accepted one. */
  for (int k = 0; k < 2; k++) {
    const sealed *base = k == 0 ? &f[3] : &f[0];
    for (size_t at = 0; at < base->n; at++) {
      for (int bit = 0; bit < 8; bit++) {
        sealed t = *base;
        t.f[at] ^= (uint8_t)(1u << bit);
        vs_err want = VS_ERR_AUTH;
        if (at == 0) want = VS_ERR_VERSION;
        if (at == 1) want = VS_ERR_MALFORMED;
        vs_err got = halves_agree(&c.sr, t.f, t.n, FRAME_MAX);
        if (at >= 2) assert_true(got == want || got == VS_ERR_REPLAY); /* a counter moved onto a seen one */
        else assert_err(got, want);
      }
    }
  }
  /* Every prefix, a trailing byte, too little room for the message. */
  for (size_t k = 0; k <= f[3].n; k++) {
    uint8_t buf[FRAME_MAX + 1];
    memcpy(buf, f[3].f, f[3].n);
    buf[f[3].n] = 0;
    vs_err want = k < VS_DATA_OVERHEAD_BYTES ? VS_ERR_TRUNCATED : k == f[3].n ? VS_OK : VS_ERR_AUTH;
    assert_err(halves_agree(&c.sr, buf, k, FRAME_MAX), want);
  }
  uint8_t buf[FRAME_MAX + 1];
  memcpy(buf, f[3].f, f[3].n);
  buf[f[3].n] = 0;
  assert_err(halves_agree(&c.sr, buf, f[3].n + 1, FRAME_MAX), VS_ERR_AUTH);
  assert_err(halves_agree(&c.sr, f[3].f, f[3].n, f[3].n - VS_DATA_OVERHEAD_BYTES - 1), VS_ERR_BUFSIZE);
  /* Not DATA: handshake frames, another version. */
  assert_err(halves_agree(&c.sr, c.hello, sizeof c.hello, FRAME_MAX), VS_ERR_MALFORMED);
  assert_err(halves_agree(&c.sr, c.auth, sizeof c.auth, FRAME_MAX), VS_ERR_MALFORMED);
  memcpy(buf, f[3].f, f[3].n);
  buf[0] = VS_WIRE_VERSION + 1;
  assert_err(halves_agree(&c.sr, buf, f[3].n, FRAME_MAX), VS_ERR_VERSION);
  /* The empty message; the largest; one byte past it. */
  uint8_t frame[64];
  size_t n = 0;
  assert_err(vs_session_seal(&c.si, NULL, 0, frame, sizeof frame, &n), VS_OK);
  assert_err(halves_agree(&c.sr, frame, n, 0), VS_OK);
  uint8_t *big = calloc(1, VS_FRAME_BYTES_MAX + 1), *plain = malloc(VS_MSG_BYTES_MAX);
  assert_non_null(big);
  assert_non_null(plain);
  fill(plain, VS_MSG_BYTES_MAX, 5);
  assert_err(vs_session_seal(&c.si, plain, VS_MSG_BYTES_MAX, big, VS_FRAME_BYTES_MAX, &n), VS_OK);
  assert_err(halves_agree(&c.sr, big, n, VS_MSG_BYTES_MAX), VS_OK);
  assert_err(halves_agree(&c.sr, big, VS_FRAME_BYTES_MAX + 1, VS_FRAME_BYTES_MAX + 1), VS_ERR_TOO_LARGE);
  free(big);
  free(plain);
  /* Another session's frame (reflection, another connection): forged. */
  assert_err(halves_agree(&c.si, f[3].f, f[3].n, FRAME_MAX), VS_ERR_AUTH);
  conn d;
  conn_handshake(&d, &ID_A, &ID_B, 28);
  assert_err(halves_agree(&d.sr, f[3].f, f[3].n, FRAME_MAX), VS_ERR_AUTH);
  /* The documented difference in the order of checks: a replayed forgery. */
  sealed t = f[0];
  t.f[t.n - 1] ^= 0x80;
  uint8_t msg[FRAME_MAX];
  size_t m = 0;
  uint64_t counter = 0;
  assert_err(open_one(&c.sr, &t), VS_ERR_REPLAY);
  assert_err(vs_data_open(c.sr.rx_key, t.f, t.n, msg, sizeof msg, &m, &counter), VS_ERR_AUTH);
}

static void test_session_accept_window(void **state) {
  (void)state;
  conn c;
  conn_handshake(&c, &ID_A, &ID_B, 29);
  vs_session *s = &c.sr;
  assert_false(s->rx_any);
  assert_err(vs_session_accept(s, 5), VS_OK);
  vs_session before = *s;
  assert_err(vs_session_accept(s, 5), VS_ERR_REPLAY); /* twice */
  assert_memory_equal(&before, s, sizeof before);
  /* Out of order within the window, each once. */
  assert_err(vs_session_accept(s, 3), VS_OK);
  assert_err(vs_session_accept(s, 4), VS_OK);
  assert_err(vs_session_accept(s, 0), VS_OK);
  assert_err(vs_session_accept(s, 7), VS_OK);
  assert_err(vs_session_accept(s, 6), VS_OK);
  for (uint64_t k = 3; k <= 7; k++) assert_err(vs_session_accept(s, k), VS_ERR_REPLAY);
  assert_int_equal(s->rx_highest, 7);
  /* Older than the window: 64 back is out, 63 back is in. */
  assert_err(vs_session_accept(s, 100), VS_OK);
  before = *s;
  assert_err(vs_session_accept(s, 100 - VS_REPLAY_WINDOW), VS_ERR_REPLAY);
  assert_err(vs_session_accept(s, 1), VS_ERR_REPLAY); /* never seen, but too old */
  assert_err(vs_session_accept(s, 100), VS_ERR_REPLAY);
  assert_memory_equal(&before, s, sizeof before); /* REPLAY leaves the window */
  assert_err(vs_session_accept(s, 100 - VS_REPLAY_WINDOW + 1), VS_OK);
  assert_err(vs_session_accept(s, 100 - VS_REPLAY_WINDOW + 1), VS_ERR_REPLAY);
  /* The highest counter a sender can use. */
  assert_err(vs_session_accept(s, UINT64_MAX - 1), VS_OK);
  assert_int_equal(s->rx_window, 1);
  assert_err(vs_session_accept(s, UINT64_MAX - 1), VS_ERR_REPLAY);
  assert_err(vs_session_accept(s, 100), VS_ERR_REPLAY);
  assert_err(vs_session_accept(NULL, 1), VS_ERR_INVAL);
}

/* The halves and vs_session_open share one window: a counter entered by
 * either is a replay for the other. */
static void test_session_accept_shares_the_window_with_open(void **state) {
  (void)state;
  conn c;
  conn_handshake(&c, &ID_A, &ID_B, 30);
  sealed f[3];
  seal_n(&c.si, f, 3);
  uint8_t msg[FRAME_MAX];
  size_t m = 0;
  uint64_t counter = 99;
  assert_err(open_one(&c.sr, &f[0]), VS_OK);
  assert_err(vs_data_open(c.sr.rx_key, f[0].f, f[0].n, msg, sizeof msg, &m, &counter), VS_OK); /* no window */
  assert_int_equal(counter, 0);
  assert_err(vs_session_accept(&c.sr, counter), VS_ERR_REPLAY);
  assert_err(vs_data_open(c.sr.rx_key, f[1].f, f[1].n, msg, sizeof msg, &m, &counter), VS_OK);
  assert_int_equal(counter, 1);
  assert_int_equal(m, 16);
  assert_int_equal(vt_get_u64le(msg), 1); /* seal_n's message k */
  assert_err(vs_session_accept(&c.sr, counter), VS_OK);
  assert_err(open_one(&c.sr, &f[1]), VS_ERR_REPLAY);
  assert_err(open_one(&c.sr, &f[2]), VS_OK);
  assert_int_equal(c.sr.rx_highest, 2);
}

static void test_data_open_checks_arguments(void **state) {
  (void)state;
  conn c;
  conn_handshake(&c, &ID_A, &ID_B, 31);
  sealed f[1];
  seal_n(&c.si, f, 1);
  uint8_t msg[FRAME_MAX];
  size_t m = 0;
  uint64_t counter = 7;
  assert_err(vs_data_open(NULL, f[0].f, f[0].n, msg, sizeof msg, &m, &counter), VS_ERR_INVAL);
  assert_err(vs_data_open(c.sr.rx_key, NULL, f[0].n, msg, sizeof msg, &m, &counter), VS_ERR_INVAL);
  assert_err(vs_data_open(c.sr.rx_key, f[0].f, f[0].n, NULL, sizeof msg, &m, &counter), VS_ERR_INVAL);
  assert_err(vs_data_open(c.sr.rx_key, f[0].f, f[0].n, msg, sizeof msg, NULL, &counter), VS_ERR_INVAL);
  assert_err(vs_data_open(c.sr.rx_key, f[0].f, f[0].n, msg, sizeof msg, &m, NULL), VS_ERR_INVAL);
  /* No bytes at all is a frame too short, not a bad argument (as whole). */
  assert_err(vs_data_open(c.sr.rx_key, NULL, 0, msg, sizeof msg, &m, &counter), VS_ERR_TRUNCATED);
  assert_err(vs_session_open(&c.sr, NULL, 0, msg, sizeof msg, &m), VS_ERR_TRUNCATED);
  assert_err(vs_data_open(c.sr.rx_key, f[0].f, f[0].n, msg, sizeof msg, &m, &counter), VS_OK);
  assert_int_equal(counter, 0);
  assert_int_equal(m, f[0].n - VS_DATA_OVERHEAD_BYTES);
  assert_err(vs_session_accept(NULL, counter), VS_ERR_INVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_data_tampering_is_auth_and_leaves_window),
      cmocka_unit_test(test_data_replay_of_accepted_frame_is_replay),
      cmocka_unit_test(test_data_reordered_within_window_accepted_once),
      cmocka_unit_test(test_data_older_than_window_is_replay),
      cmocka_unit_test(test_data_counters_per_direction_are_independent),
      cmocka_unit_test(test_data_bounds_and_sizes),
      cmocka_unit_test(test_data_open_halves_accept_what_session_open_accepts),
      cmocka_unit_test(test_session_accept_window),
      cmocka_unit_test(test_session_accept_shares_the_window_with_open),
      cmocka_unit_test(test_data_open_checks_arguments),
  };
  return cmocka_run_group_tests(tests, group_setup, NULL);
}
