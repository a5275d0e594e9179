#!/usr/bin/env bash
# The main job, as the README gives it: installs what is missing, builds
# liblstm in Release mode, and trains the sunspot forecaster end to end.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash .ci/install-deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j "$(nproc)" --target sunspots
exec build/release/examples/sunspots "$@"
