/* vixsync: VS_API, the mark on every function libvixsync exports.
 *
 * The libraries are built with -fvisibility=hidden, so a function is in
 * `nm -D libvixsync.so` only if its declaration in an installed header
 * carries VS_API: internal helpers (src/) cannot become a promise by
 * accident, and a program that links another copy of them cannot bind to
 * ours. Declaring default visibility is harmless in an application that
 * includes the header, so the macro needs no "building the library" switch. */
#ifndef VIXSYNC_API_H
#define VIXSYNC_API_H

#if defined(__GNUC__) || defined(__clang__)
#define VS_API __attribute__((visibility("default")))
#else
#define VS_API
#endif

#endif
