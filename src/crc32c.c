/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78).
 *
 * Two paths with bit-identical results (tests/test_crc32c.c compares them on
 * every length 0..300): the SSE4.2 crc32 instruction on x86-64 CPUs that have
 * it, else portable slicing-by-8. The choice is made once, under pthread_once
 * with the tables, from CPUID: the library is built for baseline x86-64, so
 * only the one function below is compiled for SSE4.2, and it runs only where
 * CPUID says the instruction exists. Why bother: every WAL record is
 * checksummed when appended and again when read for a peer, and slicing-by-8
 * was ~8% of a replication's CPU (tests/bench_replicate.c). */
#include "internal.h"

#include <pthread.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CRC_X86_HW 1
#include <cpuid.h>
#include <nmmintrin.h>
#else
#define CRC_X86_HW 0
#endif

/* Test hooks (tests/test_crc32c.c declares them): the portable path, and
 * whether vs_crc32c uses the instruction. Not part of internal.h's API. */

static uint32_t crc_table[8][256];
static bool crc_hw;
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c & 1u) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    crc_table[0][i] = c;
  }
  /* Slicing-by-8 tables: eight bytes per step. */
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = crc_table[0][i];
    for (int t = 1; t < 8; t++) {
      c = crc_table[0][c & 0xffu] ^ (c >> 8);
      crc_table[t][i] = c;
    }
  }
#if CRC_X86_HW
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  crc_hw = __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & bit_SSE4_2) != 0;
#endif
}

uint32_t vs_crc32c_portable(uint32_t crc, const uint8_t *data, size_t data_bytes) {
  assert(data != NULL || data_bytes == 0);
  pthread_once(&crc_once, crc_init);
  uint32_t c = ~crc;
  while (data_bytes >= 8) {
    uint32_t lo = c ^ vs_get_u32le(data);
    uint32_t hi = vs_get_u32le(data + 4);
    c = crc_table[7][lo & 0xffu] ^ crc_table[6][(lo >> 8) & 0xffu] ^ crc_table[5][(lo >> 16) & 0xffu] ^
        crc_table[4][lo >> 24] ^ crc_table[3][hi & 0xffu] ^ crc_table[2][(hi >> 8) & 0xffu] ^
        crc_table[1][(hi >> 16) & 0xffu] ^ crc_table[0][hi >> 24];
    data += 8;
    data_bytes -= 8;
  }
  for (size_t i = 0; i < data_bytes; i++) c = crc_table[0][(c ^ data[i]) & 0xffu] ^ (c >> 8);
  return ~c;
}

#if CRC_X86_HW
/* The instruction computes the same reflected CRC-32C step as the tables,
 * eight little-endian bytes at a time. memcpy, not vs_get_u64le: x86-64 is
 * little-endian, and gcc 12 leaves vs_get_u64le's byte loop a loop, which
 * made this path slower than the tables. */
__attribute__((target("sse4.2"))) static uint32_t crc_x86(uint32_t crc, const uint8_t *data, size_t data_bytes) {
  uint64_t c = (uint32_t)~crc;
  while (data_bytes >= 8) {
    uint64_t word;
    memcpy(&word, data, sizeof word);
    c = _mm_crc32_u64(c, word);
    data += 8;
    data_bytes -= 8;
  }
  uint32_t c32 = (uint32_t)c;
  for (size_t i = 0; i < data_bytes; i++) c32 = _mm_crc32_u8(c32, data[i]);
  return ~c32;
}
#endif

bool vs_crc32c_accelerated(void) {
  pthread_once(&crc_once, crc_init);
  return crc_hw;
}

uint32_t vs_crc32c(uint32_t crc, const uint8_t *data, size_t data_bytes) {
  assert(data != NULL || data_bytes == 0);
  pthread_once(&crc_once, crc_init);
#if CRC_X86_HW
  if (crc_hw) return crc_x86(crc, data, data_bytes);
#endif
  return vs_crc32c_portable(crc, data, data_bytes);
}
