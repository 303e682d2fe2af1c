/* rx.h: the daemon's receive pipeline (node.h, "receive pipeline").
 *
 * One worker thread does the pure work of large DATA frames (AEAD open,
 * decoding, op hashes, run checks, signature verification: vs_rx_prepare)
 * while the daemon's thread applies the frames before them
 * (vs_node_on_prepared). Jobs come back in the order they were submitted;
 * the daemon keeps each connection's frames in order by sending every frame
 * of a connection through the pipeline while one of its frames is in it.
 * A pipe becomes readable when a finished job waits, so the daemon's poll(2)
 * wakes for it.
 */
#ifndef VN_RX_H
#define VN_RX_H

#include <stdbool.h>
#include <stdint.h>

#include <enet/enet.h>

#include "vixsync/node.h"

#define VN_RX_JOBS_MAX 64u /* in flight at once: past it the daemon waits for one */

typedef struct vn_rx_job {
  struct vn_rx_job *next;
  uint32_t slot;      /* the daemon's: which connection, and its number */
  uint64_t conn;
  uint32_t handle;
  ENetPacket *pkt;    /* owned by the job */
  vs_rx_key key;      /* the session's receive key when have_key (wiped with the job) */
  bool have_key;
  vs_rx_prep *prep;   /* set by the worker; NULL if it ran out of memory */
} vn_rx_job;

typedef struct vn_rx vn_rx;

/* Start the worker. NULL if a thread, pipe or memory is missing (the daemon
 * then applies every frame on its own thread). */
vn_rx *vn_rx_start(void);

/* Readable while finished jobs wait. */
int vn_rx_fd(const vn_rx *rx);

/* Jobs submitted and not yet taken back. */
uint32_t vn_rx_inflight(const vn_rx *rx);

/* Hand a job over (the pipeline owns it until vn_rx_take returns it).
 * false: VN_RX_JOBS_MAX in flight, nothing taken. */
bool vn_rx_submit(vn_rx *rx, vn_rx_job *job);

/* The oldest finished job, or NULL; with `wait`, blocks until one is
 * finished (only when some are in flight). */
vn_rx_job *vn_rx_take(vn_rx *rx, bool wait);

/* Free a job: its prep, its packet, its key. */
void vn_rx_job_free(vn_rx_job *job);

/* Stop the worker and free every job still inside. NULL is fine. */
void vn_rx_stop(vn_rx *rx);

#endif
