#!/usr/bin/env bash
# Run an example and check its story: it must exit 0, and every line of the
# .expect file (an extended regex) must match a line of its output, in order.
set -u
exe=$1 expect=$2
out=$("$exe" 2>&1)
rc=$?
printf '%s\n' "$out"
if [ $rc -ne 0 ]; then echo "FAIL: $exe exited $rc"; exit 1; fi
[ -f "$expect" ] || { echo "FAIL: no expectations in $expect"; exit 1; }
line_no=0
remaining=$out
while IFS= read -r pattern || [ -n "$pattern" ]; do
  [ -z "$pattern" ] && continue
  case "$pattern" in \#*) continue ;; esac
  line_no=$((line_no + 1))
  # Find the first output line matching, then keep only what follows it.
  idx=$(printf '%s\n' "$remaining" | grep -n -E -m1 -- "$pattern" | cut -d: -f1)
  if [ -z "$idx" ]; then echo "FAIL: expectation $line_no not met (in order): $pattern"; exit 1; fi
  remaining=$(printf '%s\n' "$remaining" | tail -n +"$((idx + 1))")
done < "$expect"
echo "PASS: $line_no expectations met"
