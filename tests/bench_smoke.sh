#!/bin/sh
# One benchmark at a tiny size: it must finish (exit 0) and print at least
# one `ratio` line. Nothing is timed: at this size the figures mean nothing.
# (bench_replicate's crypto baseline once broke with a protocol change and
# nobody saw it: benchmarks run by hand only, so this keeps them running.)
# Usage: bench_smoke.sh BENCH [ARGS...]
set -u
out=$("$@" 2>&1)
rc=$?
printf '%s\n' "$out" | tail -n 15
if [ "$rc" -ne 0 ]; then
  echo "bench_smoke: $1 exited $rc"
  exit 1
fi
if ! printf '%s\n' "$out" | grep -q '^ratio '; then
  echo "bench_smoke: $1 printed no ratio line"
  exit 1
fi
