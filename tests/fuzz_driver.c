/* Replays fuzz inputs without libFuzzer: every file named on the command
 * line, or every file in a directory named there, through
 * LLVMFuzzerTestOneInput. CI runs the corpus this way (a regression test). */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    perror(path);
    return 1;
  }
  uint8_t *buf = malloc(1u << 22);
  size_t n = buf != NULL ? fread(buf, 1, 1u << 22, f) : 0;
  fclose(f);
  if (buf == NULL) return 1;
  LLVMFuzzerTestOneInput(buf, n);
  free(buf);
  return 0;
}

int main(int argc, char **argv) {
  unsigned files = 0;
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) != 0) {
      perror(argv[i]);
      return 1;
    }
    if (!S_ISDIR(st.st_mode)) {
      if (run_file(argv[i]) != 0) return 1;
      files++;
      continue;
    }
    struct dirent **names;
    int n = scandir(argv[i], &names, NULL, alphasort); /* sorted: a deterministic order */
    if (n < 0) {
      perror(argv[i]);
      return 1;
    }
    for (int j = 0; j < n; j++) {
      char path[4096];
      if (names[j]->d_name[0] != '.') {
        snprintf(path, sizeof path, "%s/%s", argv[i], names[j]->d_name);
        if (run_file(path) != 0) return 1;
        files++;
      }
      free(names[j]);
    }
    free(names);
  }
  printf("fuzz corpus: %u inputs replayed, no crash, state unchanged\n", files);
  return files > 0 ? 0 : 1;
}
