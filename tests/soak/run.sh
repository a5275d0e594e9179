#!/usr/bin/env bash
# The soak test: many thousands of training steps with every feature at once,
# failing when memory grows after the warm-up (tests/soak/soak.c says what is
# trained and checked). Not part of tests/run.sh or CTest: it is run by hand
# (about a minute on two cores by default):
#
#   tests/soak/run.sh [STEPS]          (STEPS: 100000)
#
# Configures a Release build in build/soak, builds the lstm_soak target and
# runs it with OPENBLAS_NUM_THREADS=2 (set it to change that), printing the
# memory samples and a summary; exits 1 when a check fails.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
steps=${1:-100000}
case $steps in
  '' | *[!0-9]*) echo "run.sh: STEPS must be a number, not '$steps'" >&2; exit 2 ;;
esac
build=$top/build/soak
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Release -DLSTM_BUILD_EXAMPLES=OFF \
      -DLSTM_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" --target lstm_soak >/dev/null
echo "run.sh: $steps steps, OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-2}, load: $(cut -d' ' -f1-3 /proc/loadavg)"
OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-2} "$build/tests/lstm_soak" "$steps"
