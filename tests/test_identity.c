/* Pins include/vixsync/identity.h: key pairs from seeds, the identity and
 * mesh key files (format, mode, no overwrite, every load error), node id hex,
 * and the domain-separated chain-head signature.
 *
 * Golden values were computed independently with Python's `cryptography`
 * package (OpenSSL's ed25519), never with the code under test:
 *
 *   from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
 *   from cryptography.hazmat.primitives import serialization as s
 *   k = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
 *   pk = k.public_key().public_bytes(s.Encoding.Raw, s.PublicFormat.Raw); print(pk.hex())
 *   h = bytes((i * 7 + 1) & 0xff for i in range(32))
 *   msg = b"vixsync/chain-head/v1" + pk + (0x0102030405060708).to_bytes(8, "little") + h
 *   print(k.sign(msg).hex())
 */
#include "testutil.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "fixture.h"
#include "vixsync/identity.h"

static const char GOLDEN_PK_HEX[] = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8";
static const uint64_t GOLDEN_SEQ = 0x0102030405060708ull;
static const char GOLDEN_SIG_HEX[] =
    "e4e92c475f4392b75814d61c0cda30466c67a3b1f54f49f0e6ce598dcc127790"
    "4eb047f90723373390bf063a5896d7f000e7a3bfdd0fffdff9a57da38b11d90a";
static const char HEADER[] = "vixsync-identity v1\n";
#define HEADER_BYTES (sizeof HEADER - 1)
#define ID_FILE_BYTES (HEADER_BYTES + 128u + 1u)

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

/* Seed bytes salt, salt+1, ... */
static void make_seed(uint8_t seed[VS_SEED_BYTES], uint8_t salt) {
  for (unsigned i = 0; i < VS_SEED_BYTES; i++) seed[i] = (uint8_t)(i + salt);
}

static void make_identity(vs_identity *id, uint8_t salt) {
  uint8_t seed[VS_SEED_BYTES];
  make_seed(seed, salt);
  assert_err(vs_identity_from_seed(seed, id), VS_OK);
}

static void golden_hash(uint8_t hash[VS_HASH_BYTES]) {
  for (unsigned i = 0; i < VS_HASH_BYTES; i++) hash[i] = (uint8_t)(i * 7u + 1u);
}

static void join(char *out, size_t out_bytes, const char *dir, const char *name) {
  int n = snprintf(out, out_bytes, "%s/%s", dir, name);
  assert_true(n > 0 && (size_t)n < out_bytes);
}

static void write_file(const char *path, const void *data, size_t bytes, mode_t mode) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, data, bytes), (ssize_t)bytes);
  assert_int_equal(fchmod(fd, mode), 0);
  assert_int_equal(close(fd), 0);
}

static size_t read_file(const char *path, uint8_t *buf, size_t buf_bytes) {
  int fd = open(path, O_RDONLY);
  assert_true(fd >= 0);
  ssize_t n = read(fd, buf, buf_bytes);
  assert_true(n >= 0);
  close(fd);
  return (size_t)n;
}

static mode_t file_mode(const char *path) {
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  return st.st_mode & 07777;
}

/* The identity file of `id`, as the format documents it. */
static void identity_file_bytes(const vs_identity *id, char out[ID_FILE_BYTES + 1]) {
  memcpy(out, HEADER, HEADER_BYTES);
  for (unsigned i = 0; i < VS_SECRET_KEY_BYTES; i++) snprintf(out + HEADER_BYTES + 2 * i, 3, "%02x", id->sk[i]);
  out[ID_FILE_BYTES - 1] = '\n';
  out[ID_FILE_BYTES] = '\0';
}

/* Write `bytes` as DIR/identity.key with `mode` and load it. */
static vs_err load_identity_bytes(const char *dir, const void *bytes, size_t n, mode_t mode, vs_identity *id_out) {
  char path[512];
  join(path, sizeof path, dir, VS_IDENTITY_FILE_NAME);
  (void)unlink(path);
  write_file(path, bytes, n, mode);
  return vs_identity_load(dir, id_out);
}

static vs_err load_mesh_bytes(const char *path, const char *text, mode_t mode, uint8_t key_out[VS_MESH_KEY_BYTES]) {
  (void)unlink(path);
  write_file(path, text, strlen(text), mode);
  return vs_mesh_key_load(path, key_out);
}

static bool all_zero(const void *p, size_t n) {
  const uint8_t *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i] != 0) return false;
  return true;
}

/* The 93-byte message, rebuilt here by hand from the documented layout. */
static void chain_message(const uint8_t origin[32], uint64_t seq, const uint8_t hash[32], uint8_t msg[93]) {
  memcpy(msg, "vixsync/chain-head/v1", 21);
  memcpy(msg + 21, origin, 32);
  for (int i = 0; i < 8; i++) msg[53 + i] = (uint8_t)(seq >> (8 * i));
  memcpy(msg + 61, hash, 32);
}

/* ------------------------------------------------------------------------ */
/* Key pairs                                                                */
/* ------------------------------------------------------------------------ */

static void test_identity_from_seed_matches_golden(void **state) {
  (void)state;
  vs_identity id;
  make_identity(&id, 0);
  uint8_t want[VS_ORIGIN_BYTES];
  vt_hex_to_bytes(GOLDEN_PK_HEX, want, sizeof want);
  assert_memory_equal(id.pk, want, VS_ORIGIN_BYTES);
  uint8_t seed[VS_SEED_BYTES];
  make_seed(seed, 0);
  assert_memory_equal(id.sk, seed, VS_SEED_BYTES); /* sk is seed || pk */
  assert_memory_equal(id.sk + VS_SEED_BYTES, want, VS_ORIGIN_BYTES);
}

static void test_identity_pk_is_sk_to_pk(void **state) {
  (void)state;
  for (uint8_t salt = 0; salt < 8; salt++) {
    vs_identity id;
    make_identity(&id, (uint8_t)(salt * 31u));
    uint8_t pk[crypto_sign_PUBLICKEYBYTES];
    assert_int_equal(crypto_sign_ed25519_sk_to_pk(pk, id.sk), 0);
    assert_memory_equal(pk, id.pk, VS_ORIGIN_BYTES);
  }
}

static void test_identity_different_seeds_give_different_keys(void **state) {
  (void)state;
  vs_identity a, b;
  make_identity(&a, 0);
  uint8_t seed[VS_SEED_BYTES];
  make_seed(seed, 0);
  seed[31] ^= 1; /* one bit */
  assert_err(vs_identity_from_seed(seed, &b), VS_OK);
  assert_memory_not_equal(a.pk, b.pk, VS_ORIGIN_BYTES);
  assert_memory_not_equal(a.sk, b.sk, VS_SECRET_KEY_BYTES);
}

static void test_identity_from_seed_rejects_null(void **state) {
  (void)state;
  vs_identity id;
  uint8_t seed[VS_SEED_BYTES] = {0};
  assert_err(vs_identity_from_seed(NULL, &id), VS_ERR_INVAL);
  assert_err(vs_identity_from_seed(seed, NULL), VS_ERR_INVAL);
}

static void test_identity_wipe_zeroes_everything(void **state) {
  (void)state;
  vs_identity id;
  make_identity(&id, 1);
  vs_identity_wipe(&id);
  assert_true(all_zero(&id, sizeof id));
  vs_identity_wipe(NULL); /* no-op */
}

/* ------------------------------------------------------------------------ */
/* Hex                                                                      */
/* ------------------------------------------------------------------------ */

static void test_node_id_hex_is_golden_lowercase(void **state) {
  (void)state;
  vs_identity id;
  make_identity(&id, 0);
  char hex[VS_NODE_ID_HEX_BYTES];
  memset(hex, 'X', sizeof hex);
  vs_identity_node_id_hex(&id, hex);
  assert_string_equal(hex, GOLDEN_PK_HEX);
  assert_int_equal(strlen(hex), 64);
}

static void test_node_id_hex_roundtrip(void **state) {
  (void)state;
  vs_identity id;
  make_identity(&id, 77);
  char hex[VS_NODE_ID_HEX_BYTES];
  vs_identity_node_id_hex(&id, hex);
  uint8_t pk[VS_ORIGIN_BYTES];
  assert_err(vs_node_id_from_hex(hex, pk), VS_OK);
  assert_memory_equal(pk, id.pk, VS_ORIGIN_BYTES);
  for (unsigned i = 0; i < 64; i++)
    if (hex[i] >= 'a' && hex[i] <= 'f') hex[i] = (char)(hex[i] - 'a' + 'A');
  memset(pk, 0, sizeof pk);
  assert_err(vs_node_id_from_hex(hex, pk), VS_OK);
  assert_memory_equal(pk, id.pk, VS_ORIGIN_BYTES);
}

static void test_node_id_from_hex_rejects_bad_input(void **state) {
  (void)state;
  uint8_t pk[VS_ORIGIN_BYTES];
  char hex[80];
  assert_err(vs_node_id_from_hex(NULL, pk), VS_ERR_INVAL);
  assert_err(vs_node_id_from_hex(GOLDEN_PK_HEX, NULL), VS_ERR_INVAL);
  assert_err(vs_node_id_from_hex("", pk), VS_ERR_INVAL);
  memcpy(hex, GOLDEN_PK_HEX, 63); /* short */
  hex[63] = '\0';
  assert_err(vs_node_id_from_hex(hex, pk), VS_ERR_INVAL);
  snprintf(hex, sizeof hex, "%s0", GOLDEN_PK_HEX); /* long */
  assert_err(vs_node_id_from_hex(hex, pk), VS_ERR_INVAL);
  const char bad[] = {'g', 'G', ' ', '-', 'x', ':', '\n'};
  for (unsigned pos = 0; pos < 64; pos += 21) {
    for (unsigned b = 0; b < sizeof bad; b++) {
      snprintf(hex, sizeof hex, "%s", GOLDEN_PK_HEX);
      hex[pos] = bad[b];
      assert_err(vs_node_id_from_hex(hex, pk), VS_ERR_INVAL);
    }
  }
}

static void test_hex_encode_is_lowercase_and_terminated(void **state) {
  (void)state;
  const uint8_t in[] = {0x00, 0x01, 0xab, 0xCD, 0xff};
  char out[2 * sizeof in + 1];
  memset(out, 'X', sizeof out);
  vs_hex_encode(in, sizeof in, out);
  assert_string_equal(out, "0001abcdff");
  char empty[1] = {'X'};
  vs_hex_encode(in, 0, empty);
  assert_int_equal(empty[0], '\0');
}

static void test_hex_decode_accepts_both_cases(void **state) {
  (void)state;
  uint8_t out[4];
  assert_err(vs_hex_decode("00aBCdfF", 8, out, sizeof out), VS_OK);
  const uint8_t want[] = {0x00, 0xab, 0xcd, 0xff};
  assert_memory_equal(out, want, sizeof want);
  /* Not NUL-terminated: only hex_chars are read. */
  assert_err(vs_hex_decode("0102zz", 4, out, 2), VS_OK);
  assert_int_equal(out[0], 1);
  assert_int_equal(out[1], 2);
}

static void test_hex_decode_rejects_bad_input_and_wipes(void **state) {
  (void)state;
  uint8_t out[4];
  assert_err(vs_hex_decode(NULL, 8, out, 4), VS_ERR_INVAL);
  assert_err(vs_hex_decode("00112233", 8, NULL, 4), VS_ERR_INVAL);
  memset(out, 0xee, sizeof out);
  assert_err(vs_hex_decode("001122", 6, out, 4), VS_ERR_MALFORMED); /* short */
  assert_true(all_zero(out, sizeof out));
  assert_err(vs_hex_decode("0011223344", 10, out, 4), VS_ERR_MALFORMED); /* long */
  assert_err(vs_hex_decode("0011223", 7, out, 4), VS_ERR_MALFORMED);    /* odd */
  memset(out, 0xee, sizeof out);
  assert_err(vs_hex_decode("001122g3", 8, out, 4), VS_ERR_MALFORMED); /* late bad char */
  assert_true(all_zero(out, sizeof out));                              /* no partial prefix */
  assert_err(vs_hex_decode("0011 233", 8, out, 4), VS_ERR_MALFORMED);
  assert_err(vs_hex_decode("00112\0" "33", 8, out, 4), VS_ERR_MALFORMED); /* embedded NUL */
}

/* ------------------------------------------------------------------------ */
/* The identity file                                                        */
/* ------------------------------------------------------------------------ */

static void test_identity_save_load_roundtrip(void **state) {
  (void)state;
  char dir[256];
  vt_tmpdir(dir, sizeof dir, "identity");
  vs_identity id, loaded;
  make_identity(&id, 5);
  assert_err(vs_identity_save(dir, &id), VS_OK);
  assert_err(vs_identity_load(dir, &loaded), VS_OK);
  assert_memory_equal(&loaded, &id, sizeof id);
  vt_rmrf(dir);
}

static void test_identity_file_format_is_pinned(void **state) {
  (void)state;
  char dir[256], path[512];
  vt_tmpdir(dir, sizeof dir, "identity");
  vs_identity id;
  make_identity(&id, 0);
  assert_err(vs_identity_save(dir, &id), VS_OK);
  join(path, sizeof path, dir, "identity.key");
  uint8_t got[512];
  size_t n = read_file(path, got, sizeof got);
  char want[ID_FILE_BYTES + 1];
  identity_file_bytes(&id, want);
  assert_int_equal(n, 149);
  assert_memory_equal(got, want, ID_FILE_BYTES);
  /* The public half is the golden node id: the file shows it in clear. */
  assert_memory_equal(got + HEADER_BYTES + 64, GOLDEN_PK_HEX, 64);
  vt_rmrf(dir);
}

static void test_identity_save_mode_is_0600_whatever_the_umask(void **state) {
  (void)state;
  const mode_t masks[] = {0, 022, 077, 0277};
  for (unsigned i = 0; i < sizeof masks / sizeof masks[0]; i++) {
    char dir[256], path[512];
    vt_tmpdir(dir, sizeof dir, "identity");
    vs_identity id;
    make_identity(&id, 3);
    mode_t old = umask(masks[i]);
    vs_err err = vs_identity_save(dir, &id);
    umask(old);
    assert_err(err, VS_OK);
    join(path, sizeof path, dir, VS_IDENTITY_FILE_NAME);
    assert_int_equal(file_mode(path), 0600);
    vt_rmrf(dir);
  }
}

static void test_identity_save_leaves_no_temp_file(void **state) {
  (void)state;
  char dir[256];
  vt_tmpdir(dir, sizeof dir, "identity");
  vs_identity id;
  make_identity(&id, 3);
  assert_err(vs_identity_save(dir, &id), VS_OK);
  assert_err(vs_identity_save(dir, &id), VS_ERR_EXISTS);
  DIR *d = opendir(dir);
  assert_non_null(d);
  unsigned entries = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    assert_string_equal(e->d_name, "identity.key");
    entries++;
  }
  closedir(d);
  assert_int_equal(entries, 1);
  vt_rmrf(dir);
}

static void test_identity_save_never_overwrites(void **state) {
  (void)state;
  char dir[256];
  vt_tmpdir(dir, sizeof dir, "identity");
  vs_identity a, b, loaded;
  make_identity(&a, 1);
  make_identity(&b, 2);
  assert_err(vs_identity_save(dir, &a), VS_OK);
  assert_err(vs_identity_save(dir, &b), VS_ERR_EXISTS);
  assert_err(vs_identity_save(dir, &a), VS_ERR_EXISTS);
  assert_err(vs_identity_load(dir, &loaded), VS_OK);
  assert_memory_equal(&loaded, &a, sizeof a);
  vt_rmrf(dir);
}

static void test_identity_save_never_overwrites_any_file(void **state) {
  (void)state;
  char dir[256], path[512];
  vt_tmpdir(dir, sizeof dir, "identity");
  join(path, sizeof path, dir, VS_IDENTITY_FILE_NAME);
  write_file(path, "junk", 4, 0600);
  vs_identity id;
  make_identity(&id, 1);
  assert_err(vs_identity_save(dir, &id), VS_ERR_EXISTS);
  uint8_t got[16];
  assert_int_equal(read_file(path, got, sizeof got), 4);
  assert_memory_equal(got, "junk", 4);
  /* A dangling symlink is an existing name too: never written through. */
  char target[512];
  join(target, sizeof target, dir, "elsewhere");
  assert_int_equal(unlink(path), 0);
  assert_int_equal(symlink(target, path), 0);
  assert_err(vs_identity_save(dir, &id), VS_ERR_EXISTS);
  assert_int_equal(access(target, F_OK), -1);
  vt_rmrf(dir);
}

static void test_identity_save_rejects_bad_arguments(void **state) {
  (void)state;
  char dir[256];
  vt_tmpdir(dir, sizeof dir, "identity");
  vs_identity id;
  make_identity(&id, 1);
  assert_err(vs_identity_save(NULL, &id), VS_ERR_INVAL);
  assert_err(vs_identity_save("", &id), VS_ERR_INVAL);
  assert_err(vs_identity_save(dir, NULL), VS_ERR_INVAL);
  /* A pk that is not the key pair of sk: writing it would make a node whose
   * id cannot sign for itself. */
  vs_identity bad = id;
  bad.pk[0] ^= 1;
  assert_err(vs_identity_save(dir, &bad), VS_ERR_INVAL);
  bad = id;
  bad.sk[40] ^= 1;
  assert_err(vs_identity_save(dir, &bad), VS_ERR_INVAL);
  char path[512];
  join(path, sizeof path, dir, VS_IDENTITY_FILE_NAME);
  assert_int_equal(access(path, F_OK), -1); /* nothing written */
  vt_rmrf(dir);
}

static void test_identity_save_into_missing_dir_is_store_error(void **state) {
  (void)state;
  char dir[256], missing[512];
  vt_tmpdir(dir, sizeof dir, "identity");
  join(missing, sizeof missing, dir, "no/such/dir");
  vs_identity id;
  make_identity(&id, 1);
  assert_err(vs_identity_save(missing, &id), VS_ERR_STORE);
  vt_rmrf(dir);
}

static void test_identity_load_missing_is_notfound(void **state) {
  (void)state;
  char dir[256], missing[512];
  vt_tmpdir(dir, sizeof dir, "identity");
  vs_identity id;
  memset(&id, 0xaa, sizeof id);
  assert_err(vs_identity_load(dir, &id), VS_ERR_NOTFOUND);
  assert_true(all_zero(&id, sizeof id));
  join(missing, sizeof missing, dir, "nodir");
  assert_err(vs_identity_load(missing, &id), VS_ERR_NOTFOUND);
  assert_err(vs_identity_load(NULL, &id), VS_ERR_INVAL);
  assert_err(vs_identity_load(dir, NULL), VS_ERR_INVAL);
  vt_rmrf(dir);
}

static void test_identity_load_unreadable_is_store_error(void **state) {
  (void)state;
  /* A directory where the file should be: unreadable even for root (the
   * tests may run as root, for whom chmod 000 reads fine). */
  char dir[256], path[512];
  vt_tmpdir(dir, sizeof dir, "identity");
  join(path, sizeof path, dir, VS_IDENTITY_FILE_NAME);
  assert_int_equal(mkdir(path, 0700), 0);
  vs_identity id;
  assert_err(vs_identity_load(dir, &id), VS_ERR_STORE);
  vt_rmrf(dir);
}

static void test_identity_load_rejects_bad_header(void **state) {
  (void)state;
  char dir[256];
  vt_tmpdir(dir, sizeof dir, "identity");
  vs_identity id, loaded;
  make_identity(&id, 4);
  char good[ID_FILE_BYTES + 1];
  identity_file_bytes(&id, good);
  const char *headers[] = {"vixsync-identity v1 \n", "Vixsync-identity v1\n", "vixsync-identity\n",
                           "vixsync-identity v\n", "vixsync-identity vx\n", "vixsync-identity v1\r\n",
                           "", "ssh-ed25519\n"};
  for (unsigned i = 0; i < sizeof headers / sizeof headers[0]; i++) {
    char text[512];
    snprintf(text, sizeof text, "%s%s", headers[i], good + HEADER_BYTES);
    memset(&loaded, 0xaa, sizeof loaded);
    assert_err(load_identity_bytes(dir, text, strlen(text), 0600, &loaded), VS_ERR_MALFORMED);
    assert_true(all_zero(&loaded, sizeof loaded));
  }
  vt_rmrf(dir);
}

static void test_identity_load_names_a_future_version(void **state) {
  (void)state;
  char dir[256];
  vt_tmpdir(dir, sizeof dir, "identity");
  vs_identity loaded;
  const char *texts[] = {"vixsync-identity v2\nwhatever the new format holds\n", "vixsync-identity v10\n",
                         "vixsync-identity v0\n"};
  for (unsigned i = 0; i < sizeof texts / sizeof texts[0]; i++)
    assert_err(load_identity_bytes(dir, texts[i], strlen(texts[i]), 0600, &loaded), VS_ERR_VERSION);
  vt_rmrf(dir);
}

static void test_identity_load_rejects_bad_hex(void **state) {
  (void)state;
  char dir[256];
  vt_tmpdir(dir, sizeof dir, "identity");
  vs_identity id, loaded;
  make_identity(&id, 4);
  char text[ID_FILE_BYTES + 1];
  const char bad[] = {'g', ' ', '\n', '\0', 'z'};
  for (unsigned pos = HEADER_BYTES; pos < ID_FILE_BYTES - 1; pos += 17) {
    for (unsigned b = 0; b < sizeof bad; b++) {
      identity_file_bytes(&id, text);
      text[pos] = bad[b];
      assert_err(load_identity_bytes(dir, text, ID_FILE_BYTES, 0600, &loaded), VS_ERR_MALFORMED);
    }
  }
  vt_rmrf(dir);
}

static void test_identity_load_accepts_uppercase_hex(void **state) {
  (void)state;
  char dir[256];
  vt_tmpdir(dir, sizeof dir, "identity");
  vs_identity id, loaded;
  make_identity(&id, 4);
  char text[ID_FILE_BYTES + 1];
  identity_file_bytes(&id, text);
  for (unsigned i = HEADER_BYTES; i < ID_FILE_BYTES - 1; i++)
    if (text[i] >= 'a' && text[i] <= 'f') text[i] = (char)(text[i] - 'a' + 'A');
  assert_err(load_identity_bytes(dir, text, ID_FILE_BYTES, 0600, &loaded), VS_OK);
  assert_memory_equal(&loaded, &id, sizeof id);
  vt_rmrf(dir);
}

static void test_identity_load_rejects_every_truncation(void **state) {
  (void)state;
  char dir[256];
  vt_tmpdir(dir, sizeof dir, "identity");
  vs_identity id, loaded;
  make_identity(&id, 4);
  char text[ID_FILE_BYTES + 1];
  identity_file_bytes(&id, text);
  for (size_t n = 0; n < ID_FILE_BYTES; n++)
    assert_err(load_identity_bytes(dir, text, n, 0600, &loaded), VS_ERR_MALFORMED);
  assert_err(load_identity_bytes(dir, text, ID_FILE_BYTES, 0600, &loaded), VS_OK);
  vt_rmrf(dir);
}

static void test_identity_load_rejects_trailing_bytes(void **state) {
  (void)state;
  char dir[256];
  vt_tmpdir(dir, sizeof dir, "identity");
  vs_identity id, loaded;
  make_identity(&id, 4);
  char text[1024];
  identity_file_bytes(&id, text);
  const char *tails[] = {"\n", " ", "00", "x\n"};
  for (unsigned i = 0; i < sizeof tails / sizeof tails[0]; i++) {
    identity_file_bytes(&id, text);
    strcat(text, tails[i]);
    assert_err(load_identity_bytes(dir, text, strlen(text), 0600, &loaded), VS_ERR_MALFORMED);
  }
  /* A huge file is refused without reading it all. */
  memset(text, '0', sizeof text);
  memcpy(text, HEADER, HEADER_BYTES);
  assert_err(load_identity_bytes(dir, text, sizeof text, 0600, &loaded), VS_ERR_MALFORMED);
  vt_rmrf(dir);
}

static void test_identity_load_rejects_pk_not_matching_sk(void **state) {
  (void)state;
  char dir[256];
  vt_tmpdir(dir, sizeof dir, "identity");
  vs_identity a, b, loaded;
  make_identity(&a, 1);
  make_identity(&b, 2);
  /* Seed of a, public half of b. */
  vs_identity mixed = a;
  memcpy(mixed.sk + VS_SEED_BYTES, b.pk, VS_ORIGIN_BYTES);
  char text[ID_FILE_BYTES + 1];
  identity_file_bytes(&mixed, text);
  assert_err(load_identity_bytes(dir, text, ID_FILE_BYTES, 0600, &loaded), VS_ERR_MALFORMED);
  assert_true(all_zero(&loaded, sizeof loaded));
  /* One flipped bit anywhere in either half is caught. */
  for (unsigned i = 0; i < VS_SECRET_KEY_BYTES; i += 7) {
    vs_identity flipped = a;
    flipped.sk[i] ^= 0x10;
    identity_file_bytes(&flipped, text);
    assert_err(load_identity_bytes(dir, text, ID_FILE_BYTES, 0600, &loaded), VS_ERR_MALFORMED);
  }
  vt_rmrf(dir);
}

static void test_identity_load_refuses_a_file_others_can_access(void **state) {
  (void)state;
  char dir[256];
  vt_tmpdir(dir, sizeof dir, "identity");
  vs_identity id, loaded;
  make_identity(&id, 4);
  char text[ID_FILE_BYTES + 1];
  identity_file_bytes(&id, text);
  const mode_t refused[] = {0644, 0640, 0604, 0660, 0606, 0610, 0601, 0620, 0602, 0777};
  for (unsigned i = 0; i < sizeof refused / sizeof refused[0]; i++) {
    memset(&loaded, 0xaa, sizeof loaded);
    assert_err(load_identity_bytes(dir, text, ID_FILE_BYTES, refused[i], &loaded), VS_ERR_INVAL);
    assert_true(all_zero(&loaded, sizeof loaded));
  }
  const mode_t accepted[] = {0600, 0400, 0700};
  for (unsigned i = 0; i < sizeof accepted / sizeof accepted[0]; i++)
    assert_err(load_identity_bytes(dir, text, ID_FILE_BYTES, accepted[i], &loaded), VS_OK);
  vt_rmrf(dir);
}

/* ------------------------------------------------------------------------ */
/* Chain-head signatures                                                    */
/* ------------------------------------------------------------------------ */

static void test_chain_sign_verify_roundtrip(void **state) {
  (void)state;
  vs_identity id;
  make_identity(&id, 11);
  uint8_t hash[VS_HASH_BYTES], sig[VS_SIGNATURE_BYTES];
  golden_hash(hash);
  const uint64_t seqs[] = {1, 2, 64, 0xffffffffull, VS_OP_SEQ_MAX};
  for (unsigned i = 0; i < sizeof seqs / sizeof seqs[0]; i++) {
    vs_chain_sign(&id, seqs[i], hash, sig);
    assert_true(vs_chain_verify(id.pk, seqs[i], hash, sig));
  }
}

static void test_chain_sign_matches_golden(void **state) {
  (void)state;
  vs_identity id;
  make_identity(&id, 0);
  uint8_t hash[VS_HASH_BYTES], sig[VS_SIGNATURE_BYTES], want[VS_SIGNATURE_BYTES];
  golden_hash(hash);
  vs_chain_sign(&id, GOLDEN_SEQ, hash, sig);
  vt_hex_to_bytes(GOLDEN_SIG_HEX, want, sizeof want);
  assert_memory_equal(sig, want, VS_SIGNATURE_BYTES);
  assert_true(vs_chain_verify(id.pk, GOLDEN_SEQ, hash, want));
}

static void test_chain_sign_message_layout_is_pinned(void **state) {
  (void)state;
  vs_identity id;
  make_identity(&id, 21);
  uint8_t hash[VS_HASH_BYTES], sig[VS_SIGNATURE_BYTES], msg[93];
  golden_hash(hash);
  vs_chain_sign(&id, GOLDEN_SEQ, hash, sig);
  chain_message(id.pk, GOLDEN_SEQ, hash, msg);
  assert_int_equal(crypto_sign_verify_detached(sig, msg, sizeof msg, id.pk), 0);
  /* And the other way: a signature made directly over the layout verifies. */
  uint8_t direct[VS_SIGNATURE_BYTES];
  assert_int_equal(crypto_sign_detached(direct, NULL, msg, sizeof msg, id.sk), 0);
  assert_true(vs_chain_verify(id.pk, GOLDEN_SEQ, hash, direct));
}

static void test_chain_verify_rejects_a_signature_without_the_domain(void **state) {
  (void)state;
  vs_identity id;
  make_identity(&id, 21);
  uint8_t hash[VS_HASH_BYTES], msg[93], sig[VS_SIGNATURE_BYTES];
  golden_hash(hash);
  chain_message(id.pk, 5, hash, msg);
  /* The same fields signed under another (or no) prefix must not pass. */
  assert_int_equal(crypto_sign_detached(sig, NULL, msg + 21, sizeof msg - 21, id.sk), 0);
  assert_false(vs_chain_verify(id.pk, 5, hash, sig));
  msg[20] = '2'; /* "vixsync/chain-head/v2" */
  assert_int_equal(crypto_sign_detached(sig, NULL, msg, sizeof msg, id.sk), 0);
  assert_false(vs_chain_verify(id.pk, 5, hash, sig));
}

static void test_chain_verify_rejects_other_origin(void **state) {
  (void)state;
  vs_identity a, b;
  make_identity(&a, 1);
  make_identity(&b, 2);
  uint8_t hash[VS_HASH_BYTES], sig[VS_SIGNATURE_BYTES];
  golden_hash(hash);
  vs_chain_sign(&a, 7, hash, sig);
  assert_false(vs_chain_verify(b.pk, 7, hash, sig));
  uint8_t zero[VS_ORIGIN_BYTES] = {0}; /* not a usable point */
  assert_false(vs_chain_verify(zero, 7, hash, sig));
}

static void test_chain_verify_rejects_other_seq(void **state) {
  (void)state;
  vs_identity id;
  make_identity(&id, 1);
  uint8_t hash[VS_HASH_BYTES], sig[VS_SIGNATURE_BYTES];
  golden_hash(hash);
  vs_chain_sign(&id, GOLDEN_SEQ, hash, sig);
  assert_false(vs_chain_verify(id.pk, GOLDEN_SEQ + 1, hash, sig));
  assert_false(vs_chain_verify(id.pk, GOLDEN_SEQ - 1, hash, sig));
  for (unsigned byte = 0; byte < 8; byte++) /* every byte of seq is signed */
    assert_false(vs_chain_verify(id.pk, GOLDEN_SEQ ^ (1ull << (8 * byte)), hash, sig));
}

static void test_chain_verify_rejects_other_hash(void **state) {
  (void)state;
  vs_identity id;
  make_identity(&id, 1);
  uint8_t hash[VS_HASH_BYTES], sig[VS_SIGNATURE_BYTES];
  golden_hash(hash);
  vs_chain_sign(&id, 9, hash, sig);
  for (unsigned i = 0; i < VS_HASH_BYTES; i++) {
    uint8_t other[VS_HASH_BYTES];
    memcpy(other, hash, sizeof other);
    other[i] ^= 0x01;
    assert_false(vs_chain_verify(id.pk, 9, other, sig));
  }
}

static void test_chain_verify_rejects_flipped_signature(void **state) {
  (void)state;
  vs_identity id;
  make_identity(&id, 1);
  uint8_t hash[VS_HASH_BYTES], sig[VS_SIGNATURE_BYTES];
  golden_hash(hash);
  vs_chain_sign(&id, 9, hash, sig);
  for (unsigned i = 0; i < VS_SIGNATURE_BYTES; i++) {
    uint8_t bad[VS_SIGNATURE_BYTES];
    memcpy(bad, sig, sizeof bad);
    bad[i] ^= (uint8_t)(1u << (i % 8));
    assert_false(vs_chain_verify(id.pk, 9, hash, bad));
  }
  uint8_t zero[VS_SIGNATURE_BYTES] = {0};
  assert_false(vs_chain_verify(id.pk, 9, hash, zero));
}

static void test_chain_verify_rejects_signature_by_another_key(void **state) {
  (void)state;
  vs_identity a, b;
  make_identity(&a, 1);
  make_identity(&b, 2);
  uint8_t hash[VS_HASH_BYTES], sig[VS_SIGNATURE_BYTES], msg[93];
  golden_hash(hash);
  vs_chain_sign(&b, 9, hash, sig);
  assert_false(vs_chain_verify(a.pk, 9, hash, sig));
  /* Even when b signs a message that names a as the origin. */
  chain_message(a.pk, 9, hash, msg);
  assert_int_equal(crypto_sign_detached(sig, NULL, msg, sizeof msg, b.sk), 0);
  assert_false(vs_chain_verify(a.pk, 9, hash, sig));
}

static void test_chain_verify_rejects_null(void **state) {
  (void)state;
  vs_identity id;
  make_identity(&id, 1);
  uint8_t hash[VS_HASH_BYTES], sig[VS_SIGNATURE_BYTES];
  golden_hash(hash);
  vs_chain_sign(&id, 9, hash, sig);
  assert_false(vs_chain_verify(NULL, 9, hash, sig));
  assert_false(vs_chain_verify(id.pk, 9, NULL, sig));
  assert_false(vs_chain_verify(id.pk, 9, hash, NULL));
}

/* ------------------------------------------------------------------------ */
/* The mesh key                                                             */
/* ------------------------------------------------------------------------ */

static void make_mesh_key(uint8_t key[VS_MESH_KEY_BYTES]) {
  for (unsigned i = 0; i < VS_MESH_KEY_BYTES; i++) key[i] = (uint8_t)(0xa0 + i * 13u);
}

static void test_mesh_key_save_load_roundtrip(void **state) {
  (void)state;
  char dir[256], path[512];
  vt_tmpdir(dir, sizeof dir, "identity");
  join(path, sizeof path, dir, "mesh.key");
  uint8_t key[VS_MESH_KEY_BYTES], loaded[VS_MESH_KEY_BYTES];
  make_mesh_key(key);
  assert_err(vs_mesh_key_save(path, key), VS_OK);
  assert_int_equal(file_mode(path), 0600);
  uint8_t got[256];
  size_t n = read_file(path, got, sizeof got);
  char want[2 * VS_MESH_KEY_BYTES + 2];
  for (unsigned i = 0; i < VS_MESH_KEY_BYTES; i++) snprintf(want + 2 * i, 3, "%02x", key[i]);
  want[64] = '\n';
  assert_int_equal(n, 65);
  assert_memory_equal(got, want, 65);
  assert_err(vs_mesh_key_load(path, loaded), VS_OK);
  assert_memory_equal(loaded, key, sizeof key);
  vt_rmrf(dir);
}

static void test_mesh_key_save_never_overwrites(void **state) {
  (void)state;
  char dir[256], path[512];
  vt_tmpdir(dir, sizeof dir, "identity");
  join(path, sizeof path, dir, "mesh.key");
  uint8_t key[VS_MESH_KEY_BYTES], other[VS_MESH_KEY_BYTES], loaded[VS_MESH_KEY_BYTES];
  make_mesh_key(key);
  memset(other, 0x55, sizeof other);
  assert_err(vs_mesh_key_save(path, key), VS_OK);
  assert_err(vs_mesh_key_save(path, other), VS_ERR_EXISTS);
  assert_err(vs_mesh_key_load(path, loaded), VS_OK);
  assert_memory_equal(loaded, key, sizeof key);
  vt_rmrf(dir);
}

static void test_mesh_key_save_mode_is_0600_whatever_the_umask(void **state) {
  (void)state;
  char dir[256], path[512];
  vt_tmpdir(dir, sizeof dir, "identity");
  join(path, sizeof path, dir, "mesh.key");
  uint8_t key[VS_MESH_KEY_BYTES];
  make_mesh_key(key);
  mode_t old = umask(0);
  vs_err err = vs_mesh_key_save(path, key);
  umask(old);
  assert_err(err, VS_OK);
  assert_int_equal(file_mode(path), 0600);
  vt_rmrf(dir);
}

static void test_mesh_key_save_relative_path(void **state) {
  (void)state;
  char dir[256], cwd[1024];
  vt_tmpdir(dir, sizeof dir, "identity");
  assert_non_null(getcwd(cwd, sizeof cwd));
  assert_int_equal(chdir(dir), 0);
  uint8_t key[VS_MESH_KEY_BYTES], loaded[VS_MESH_KEY_BYTES];
  make_mesh_key(key);
  vs_err save_err = vs_mesh_key_save("mesh.key", key); /* parent is "." */
  vs_err load_err = vs_mesh_key_load("mesh.key", loaded);
  assert_int_equal(chdir(cwd), 0);
  assert_err(save_err, VS_OK);
  assert_err(load_err, VS_OK);
  assert_memory_equal(loaded, key, sizeof key);
  vt_rmrf(dir);
}

static void test_mesh_key_save_rejects_bad_arguments(void **state) {
  (void)state;
  char dir[256], path[512];
  vt_tmpdir(dir, sizeof dir, "identity");
  uint8_t key[VS_MESH_KEY_BYTES];
  make_mesh_key(key);
  assert_err(vs_mesh_key_save(NULL, key), VS_ERR_INVAL);
  assert_err(vs_mesh_key_save("", key), VS_ERR_INVAL);
  join(path, sizeof path, dir, "mesh.key");
  assert_err(vs_mesh_key_save(path, NULL), VS_ERR_INVAL);
  join(path, sizeof path, dir, ""); /* ends in '/' */
  assert_err(vs_mesh_key_save(path, key), VS_ERR_INVAL);
  join(path, sizeof path, dir, "no/such/mesh.key");
  assert_err(vs_mesh_key_save(path, key), VS_ERR_STORE);
  vt_rmrf(dir);
}

static void test_mesh_key_load_accepts_case_and_trailing_whitespace(void **state) {
  (void)state;
  char dir[256], path[512];
  vt_tmpdir(dir, sizeof dir, "identity");
  join(path, sizeof path, dir, "mesh.key");
  uint8_t want[VS_MESH_KEY_BYTES], key[VS_MESH_KEY_BYTES];
  make_mesh_key(want);
  char lower[65], upper[65];
  for (unsigned i = 0; i < VS_MESH_KEY_BYTES; i++) {
    snprintf(lower + 2 * i, 3, "%02x", want[i]);
    snprintf(upper + 2 * i, 3, "%02X", want[i]);
  }
  const char *tails[] = {"", "\n", "\r\n", "  \t\n", "\n\n\n"};
  for (unsigned t = 0; t < sizeof tails / sizeof tails[0]; t++) {
    for (unsigned c = 0; c < 2; c++) {
      char text[128];
      snprintf(text, sizeof text, "%s%s", c == 0 ? lower : upper, tails[t]);
      memset(key, 0, sizeof key);
      assert_err(load_mesh_bytes(path, text, 0600, key), VS_OK);
      assert_memory_equal(key, want, sizeof want);
    }
  }
  vt_rmrf(dir);
}

static void test_mesh_key_load_rejects_bad_content(void **state) {
  (void)state;
  char dir[256], path[512];
  vt_tmpdir(dir, sizeof dir, "identity");
  join(path, sizeof path, dir, "mesh.key");
  uint8_t key[VS_MESH_KEY_BYTES];
  char hex[65];
  for (unsigned i = 0; i < VS_MESH_KEY_BYTES; i++) snprintf(hex + 2 * i, 3, "%02x", (unsigned)(uint8_t)(i * 9u));
  char text[512];
  /* Wrong lengths. */
  const unsigned lengths[] = {0, 1, 62, 63};
  for (unsigned i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
    snprintf(text, sizeof text, "%.*s\n", (int)lengths[i], hex);
    assert_err(load_mesh_bytes(path, text, 0600, key), VS_ERR_MALFORMED);
  }
  snprintf(text, sizeof text, "%s0\n", hex); /* 65 */
  assert_err(load_mesh_bytes(path, text, 0600, key), VS_ERR_MALFORMED);
  snprintf(text, sizeof text, "%s%s\n", hex, hex); /* 128 */
  assert_err(load_mesh_bytes(path, text, 0600, key), VS_ERR_MALFORMED);
  /* Non-hex characters, leading whitespace, words after the key. */
  snprintf(text, sizeof text, "%s\n", hex);
  text[10] = 'g';
  assert_err(load_mesh_bytes(path, text, 0600, key), VS_ERR_MALFORMED);
  snprintf(text, sizeof text, " %s\n", hex);
  assert_err(load_mesh_bytes(path, text, 0600, key), VS_ERR_MALFORMED);
  snprintf(text, sizeof text, "%s # mesh key\n", hex);
  assert_err(load_mesh_bytes(path, text, 0600, key), VS_ERR_MALFORMED);
  /* Whitespace inside the key. */
  snprintf(text, sizeof text, "%.32s %s\n", hex, hex + 32);
  assert_err(load_mesh_bytes(path, text, 0600, key), VS_ERR_MALFORMED);
  /* More than the read cap, even if only whitespace. */
  memset(text, ' ', sizeof text);
  memcpy(text, hex, 64);
  text[sizeof text - 1] = '\0';
  memset(key, 0xaa, sizeof key);
  assert_err(load_mesh_bytes(path, text, 0600, key), VS_ERR_MALFORMED);
  assert_true(all_zero(key, sizeof key));
  vt_rmrf(dir);
}

static void test_mesh_key_load_refuses_a_file_others_can_access(void **state) {
  (void)state;
  char dir[256], path[512];
  vt_tmpdir(dir, sizeof dir, "identity");
  join(path, sizeof path, dir, "mesh.key");
  uint8_t key[VS_MESH_KEY_BYTES];
  char hex[66];
  for (unsigned i = 0; i < VS_MESH_KEY_BYTES; i++) snprintf(hex + 2 * i, 3, "%02x", (unsigned)i);
  strcat(hex, "\n");
  memset(key, 0xaa, sizeof key);
  assert_err(load_mesh_bytes(path, hex, 0644, key), VS_ERR_INVAL);
  assert_true(all_zero(key, sizeof key));
  assert_err(load_mesh_bytes(path, hex, 0640, key), VS_ERR_INVAL);
  assert_err(load_mesh_bytes(path, hex, 0604, key), VS_ERR_INVAL);
  assert_err(load_mesh_bytes(path, hex, 0400, key), VS_OK);
  vt_rmrf(dir);
}

static void test_mesh_key_load_missing_or_unreadable(void **state) {
  (void)state;
  char dir[256], path[512];
  vt_tmpdir(dir, sizeof dir, "identity");
  join(path, sizeof path, dir, "mesh.key");
  uint8_t key[VS_MESH_KEY_BYTES];
  assert_err(vs_mesh_key_load(path, key), VS_ERR_NOTFOUND);
  assert_err(vs_mesh_key_load(NULL, key), VS_ERR_INVAL);
  assert_err(vs_mesh_key_load(path, NULL), VS_ERR_INVAL);
  assert_int_equal(mkdir(path, 0700), 0);
  assert_err(vs_mesh_key_load(path, key), VS_ERR_STORE);
  assert_int_equal(rmdir(path), 0);
  assert_int_equal(mkfifo(path, 0600), 0); /* must not hang */
  assert_err(vs_mesh_key_load(path, key), VS_ERR_STORE);
  vt_rmrf(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_identity_from_seed_matches_golden),
      cmocka_unit_test(test_identity_pk_is_sk_to_pk),
      cmocka_unit_test(test_identity_different_seeds_give_different_keys),
      cmocka_unit_test(test_identity_from_seed_rejects_null),
      cmocka_unit_test(test_identity_wipe_zeroes_everything),
      cmocka_unit_test(test_node_id_hex_is_golden_lowercase),
      cmocka_unit_test(test_node_id_hex_roundtrip),
      cmocka_unit_test(test_node_id_from_hex_rejects_bad_input),
      cmocka_unit_test(test_hex_encode_is_lowercase_and_terminated),
      cmocka_unit_test(test_hex_decode_accepts_both_cases),
      cmocka_unit_test(test_hex_decode_rejects_bad_input_and_wipes),
      cmocka_unit_test(test_identity_save_load_roundtrip),
      cmocka_unit_test(test_identity_file_format_is_pinned),
      cmocka_unit_test(test_identity_save_mode_is_0600_whatever_the_umask),
      cmocka_unit_test(test_identity_save_leaves_no_temp_file),
      cmocka_unit_test(test_identity_save_never_overwrites),
      cmocka_unit_test(test_identity_save_never_overwrites_any_file),
      cmocka_unit_test(test_identity_save_rejects_bad_arguments),
      cmocka_unit_test(test_identity_save_into_missing_dir_is_store_error),
      cmocka_unit_test(test_identity_load_missing_is_notfound),
      cmocka_unit_test(test_identity_load_unreadable_is_store_error),
      cmocka_unit_test(test_identity_load_rejects_bad_header),
      cmocka_unit_test(test_identity_load_names_a_future_version),
      cmocka_unit_test(test_identity_load_rejects_bad_hex),
      cmocka_unit_test(test_identity_load_accepts_uppercase_hex),
      cmocka_unit_test(test_identity_load_rejects_every_truncation),
      cmocka_unit_test(test_identity_load_rejects_trailing_bytes),
      cmocka_unit_test(test_identity_load_rejects_pk_not_matching_sk),
      cmocka_unit_test(test_identity_load_refuses_a_file_others_can_access),
      cmocka_unit_test(test_chain_sign_verify_roundtrip),
      cmocka_unit_test(test_chain_sign_matches_golden),
      cmocka_unit_test(test_chain_sign_message_layout_is_pinned),
      cmocka_unit_test(test_chain_verify_rejects_a_signature_without_the_domain),
      cmocka_unit_test(test_chain_verify_rejects_other_origin),
      cmocka_unit_test(test_chain_verify_rejects_other_seq),
      cmocka_unit_test(test_chain_verify_rejects_other_hash),
      cmocka_unit_test(test_chain_verify_rejects_flipped_signature),
      cmocka_unit_test(test_chain_verify_rejects_signature_by_another_key),
      cmocka_unit_test(test_chain_verify_rejects_null),
      cmocka_unit_test(test_mesh_key_save_load_roundtrip),
      cmocka_unit_test(test_mesh_key_save_never_overwrites),
      cmocka_unit_test(test_mesh_key_save_mode_is_0600_whatever_the_umask),
      cmocka_unit_test(test_mesh_key_save_relative_path),
      cmocka_unit_test(test_mesh_key_save_rejects_bad_arguments),
      cmocka_unit_test(test_mesh_key_load_accepts_case_and_trailing_whitespace),
      cmocka_unit_test(test_mesh_key_load_rejects_bad_content),
      cmocka_unit_test(test_mesh_key_load_refuses_a_file_others_can_access),
      cmocka_unit_test(test_mesh_key_load_missing_or_unreadable),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
