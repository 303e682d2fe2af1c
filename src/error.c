#include "vixsync/error.h"

const char *vs_strerror(vs_err err) {
  switch (err) {
#define VS_ERR_MSG_(name, value, msg) \
  case name:                          \
    return msg;
    VS_ERR_MAP(VS_ERR_MSG_)
#undef VS_ERR_MSG_
  }
  return "unknown error";
}

const char *vs_err_name(vs_err err) {
  switch (err) {
#define VS_ERR_NAME_(name, value, msg) \
  case name:                           \
    return #name;
    VS_ERR_MAP(VS_ERR_NAME_)
#undef VS_ERR_NAME_
  }
  return "VS_ERR_UNKNOWN";
}
