#!/usr/bin/env bash
# Developer check (not used by users or CI): builds tocha._C with AddressSanitizer into build/asan, copies the
# package with that module into a scratch folder and runs the test suite against it, so any out-of-bounds
# read/write or use-after-free reachable from the tests aborts with a report. ~3 min build + ~2 min tests on
# 2 cores. Extra pytest args pass through, e.g. scripts/asan_tests.sh tests/test_conv.py -x.
# libasan and libstdc++ are preloaded (python itself is not linked with libstdc++: without it ASan cannot
# intercept __cxa_throw and aborts on the first C++ exception).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
cmake -S . -B build/asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS="-fsanitize=address -fno-omit-frame-pointer" \
  -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address" -DCMAKE_MODULE_LINKER_FLAGS="-fsanitize=address" \
  -DPython_EXECUTABLE="$(command -v "$PY")" -Dpybind11_DIR="$("$PY" -m pybind11 --cmakedir)" > /dev/null
cmake --build build/asan
pkg=$(mktemp -d)
trap 'rm -rf "$pkg"' EXIT
cp -r python/tocha "$pkg/"
rm -f "$pkg"/tocha/_C*.so
cp build/asan/_C*.so "$pkg/tocha/"
LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libstdc++.so)" \
  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 PYTHONPATH="$pkg" \
  "$PY" -m pytest -q -p no:cacheprovider "${@:-tests}"
