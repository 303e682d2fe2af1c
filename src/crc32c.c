/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), slicing-by-8.
 * The tables are built once, on first use, under pthread_once. */
#include "internal.h"

#include <pthread.h>

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_table_build(void) {
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
}

uint32_t vs_crc32c(uint32_t crc, const uint8_t *data, size_t data_bytes) {
  pthread_once(&crc_once, crc_table_build);
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
