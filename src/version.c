/* The run-time half of version.h: the numbers this library was built
 * with, for a program compiled against other headers to ask. */
#include "vixsync/version.h"

#include <stddef.h>

const char *vs_version(int *major, int *minor, int *patch) {
  if (major != NULL) *major = VS_VERSION_MAJOR;
  if (minor != NULL) *minor = VS_VERSION_MINOR;
  if (patch != NULL) *patch = VS_VERSION_PATCH;
  return VS_VERSION_STRING;
}
