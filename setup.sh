#!/usr/bin/env bash
# vixsync setup: install what is missing (Debian packages only), build, run.
#
#   ./setup.sh run       install, build, run the main job: the local mesh demo (vix-node demo)
#   ./setup.sh examples  install, build, run the walk-through examples
#   ./setup.sh test      install, build (plain and ASan+UBSan), run the whole suite; then a
#                        Release build with clang (NDEBUG: asserts compiled out) and its unit tests.
#                        Its builds treat warnings as errors (VS_WERROR=ON); the others do not.
#   ./setup.sh deps      only install missing packages
#   ./setup.sh build     only build (build/)
#   ./setup.sh bench     build and run the benchmarks (by hand; not part of CI)
#   ./setup.sh docs      install doxygen (optional, only for this), build the API reference from the
#                        headers into build/docs/html; any Doxygen warning fails it
set -euo pipefail
cd "$(dirname "$0")"

PACKAGES=(gcc clang libc6-dev make cmake pkg-config python3 valgrind
          libsodium-dev libenet-dev liblmdb-dev libcmocka-dev libcurl4-openssl-dev)
OPTIONAL_PACKAGES=(doxygen) # ./setup.sh docs only: the other commands never install or need them
JOBS=$(nproc 2>/dev/null || echo 2)

deps() { # deps [extra packages...]
  local missing=()
  for p in "${PACKAGES[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "setup: installing ${missing[*]}"
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup: need root or sudo to install ${missing[*]}" >&2; exit 1; }
    sudo=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

build() { # build DIR [cmake args...] (a later -DCMAKE_BUILD_TYPE wins)
  local dir=$1; shift
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$dir" -j "$JOBS" >/dev/null
}

run_examples() {
  for ex in build/examples/[0-9][0-9]_*; do
    echo "=== $(basename "$ex")"
    "$ex"
    echo
  done
}

valgrind_examples() {
  for ex in build/examples/[0-9][0-9]_*; do
    valgrind -q --leak-check=full --show-leak-kinds=definite,indirect,possible \
      --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99 "$ex" >/dev/null
    echo "valgrind clean: $(basename "$ex")"
  done
}

cmd=${1:-run}
case "$cmd" in
  deps) deps ;;
  build) deps; build build ;;
  run) deps; build build; build/vix-node demo ;;
  examples) deps; build build; run_examples ;;
  test)
    deps
    start=$(date +%s)
    # -DVS_WERROR=ON: warnings fail the test builds (CMake's default is OFF, for consumers).
    build build -DVS_WERROR=ON -DVS_FAULT_INJECTION=ON # also vix-sim-faults: the simulator's pinned-seed bug tests
    (cd build && ctest --output-on-failure -j "$JOBS")
    build build-san -DVS_WERROR=ON -DVS_SANITIZE=ON -DVS_BUILD_BENCH=OFF
    (cd build-san && ctest --output-on-failure -j "$JOBS")
    valgrind_examples
    # Release with the other compiler: NDEBUG and clang's warnings. The unit
    # tests only (label "unit"): the e2e and simulator tests ran above.
    CC=clang build build-clang-release -DVS_WERROR=ON -DCMAKE_BUILD_TYPE=Release
    (cd build-clang-release && ctest --output-on-failure -j "$JOBS" -L unit)
    echo "setup: all tests passed in $(( $(date +%s) - start )) s"
    ;;
  bench) deps; build build; for b in build/bench_*; do "$b"; done ;;
  docs)
    deps "${OPTIONAL_PACKAGES[@]}"
    cmake -S . -B build >/dev/null # configure finds doxygen (CMakeLists.txt, target docs)
    cmake --build build --target docs
    echo "setup: API reference in build/docs/html/index.html"
    ;;
  *) echo "usage: $0 [run|examples|test|deps|build|bench|docs]" >&2; exit 2 ;;
esac
