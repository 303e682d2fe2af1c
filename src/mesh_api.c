/* Managed meshes: the public calls (vixsync/mesh.h). Work in progress:
 * these return VS_ERR_STATE until the membership gate lands with them. */
#include "vixsync/mesh.h"

#include <string.h>

const char *vs_mesh_role_name(int role) {
  switch (role) {
    case VS_MESH_READER: return "reader";
    case VS_MESH_WRITER: return "writer";
    case VS_MESH_ADMIN: return "admin";
    default: return NULL;
  }
}

vs_err vs_mesh_id(vs_store *store, uint8_t mesh_id_out[VS_MESH_ID_BYTES]) {
  (void)store, (void)mesh_id_out;
  return VS_ERR_STATE;
}
vs_err vs_mesh_create(vs_store *store, uint64_t now_ms, uint8_t mesh_id_out[VS_MESH_ID_BYTES]) {
  (void)store, (void)now_ms, (void)mesh_id_out;
  return VS_ERR_STATE;
}
vs_err vs_mesh_invite(vs_store *store, const vs_mesh_invite_req *req, uint64_t now_ms, char *token_out,
                      size_t token_max, size_t *token_chars_out) {
  (void)store, (void)req, (void)now_ms, (void)token_out, (void)token_max, (void)token_chars_out;
  return VS_ERR_STATE;
}
vs_err vs_mesh_join(vs_store *store, const char *token, size_t token_chars, uint64_t now_ms, vs_mesh_joined *out) {
  (void)store, (void)token, (void)token_chars, (void)now_ms, (void)out;
  return VS_ERR_STATE;
}
vs_err vs_mesh_revoke(vs_store *store, const uint8_t device_pk[VS_ORIGIN_BYTES], uint64_t now_ms,
                      uint64_t *cut_seq_out) {
  (void)store, (void)device_pk, (void)now_ms, (void)cut_seq_out;
  return VS_ERR_STATE;
}
vs_err vs_mesh_members(vs_store *store, vs_mesh_member_info *out, uint32_t max, uint32_t *count_out) {
  (void)store, (void)out, (void)max, (void)count_out;
  return VS_ERR_STATE;
}
