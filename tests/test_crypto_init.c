/* libsodium failing to initialise is VS_ERR_CRYPTO, not a storage error:
 * the fault is the machine's (no entropy source, say), not the store's.
 * Linked with -Wl,--wrap=sodium_init (CMakeLists.txt) against the static
 * library, so the library's own calls come here and can be made to fail. */
#include "testutil.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "vixsync/identity.h"

int __real_sodium_init(void);
int __wrap_sodium_init(void);

static int g_fail; /* the next sodium_init calls return -1 while set */

int __wrap_sodium_init(void) { return g_fail ? -1 : __real_sodium_init(); }

static void test_crypto_init_failure_is_crypto_not_store(void **state) {
  (void)state;
  uint8_t seed[VS_SEED_BYTES];
  memset(seed, 7, sizeof seed);
  vs_identity id;
  g_fail = 1;
  assert_err(vs_identity_from_seed(seed, &id), VS_ERR_CRYPTO);
  g_fail = 0;
  assert_err(vs_identity_from_seed(seed, &id), VS_OK);
}

static void test_crypto_init_failure_on_load_is_crypto(void **state) {
  (void)state;
  char dir[256];
  vt_tmpdir(dir, sizeof dir, "crypto-init");
  uint8_t seed[VS_SEED_BYTES];
  memset(seed, 9, sizeof seed);
  vs_identity id, loaded;
  assert_err(vs_identity_from_seed(seed, &id), VS_OK);
  assert_err(vs_identity_save(dir, &id), VS_OK);
  g_fail = 1;
  assert_err(vs_identity_load(dir, &loaded), VS_ERR_CRYPTO);
  g_fail = 0;
  assert_err(vs_identity_load(dir, &loaded), VS_OK);
  assert_memory_equal(loaded.pk, id.pk, VS_ORIGIN_BYTES);
  vt_rmrf(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_crypto_init_failure_is_crypto_not_store),
      cmocka_unit_test(test_crypto_init_failure_on_load_is_crypto),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
