/* vixsync: the whole public API of libvixsync in one include. The HTTP
 * transport is a library of its own: include vixsync/http_transport.h and
 * link libvixsync-http (pkg-config vixsync-http).
 *
 * Write locally, persist first, sync later. See README.md.
 */
#ifndef VIXSYNC_VIXSYNC_H
#define VIXSYNC_VIXSYNC_H

#include "vixsync/apply.h"
#include "vixsync/engine.h"
#include "vixsync/error.h"
#include "vixsync/identity.h"
#include "vixsync/mem_transport.h"
#include "vixsync/node.h"
#include "vixsync/op.h"
#include "vixsync/outbox.h"
#include "vixsync/probe.h"
#include "vixsync/retry.h"
#include "vixsync/state.h"
#include "vixsync/store.h"
#include "vixsync/transport.h"
#include "vixsync/wal.h"
#include "vixsync/wire.h"
#include "vixsync/write.h"

#define VS_VERSION_STRING "0.1.0"

#endif
