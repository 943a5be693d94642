#!/usr/bin/env bash
# Incremental developer build (not used by users or CI): compiles tocha._C into build/dev with
# CMake + Ninja and links it into python/tocha/, so `PYTHONPATH=python python -m pytest` tests the
# working tree without reinstalling. Extra CMake args pass through, e.g. -DTOCHA_CUDA=ON.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
BUILD=${BUILD_DIR:-build/dev}
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DPython_EXECUTABLE="$(command -v "$PY")" -Dpybind11_DIR="$("$PY" -m pybind11 --cmakedir)" "$@" > /dev/null
cmake --build "$BUILD"
so=$(ls "$BUILD"/_C*.so | head -n1)
ln -sf "$(realpath "$so")" python/tocha/
echo "built $so -> python/tocha/"
