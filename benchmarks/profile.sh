#!/usr/bin/env bash
# The instruction profile of liblstm on one shape: callgrind over bench_core
# (one thread, 2 warm-up calls and 1 timed call of inference and of a
# training step), then the functions that execute the most instructions.
# Callgrind counts instructions, not time: it shows where the work is (the
# products against the cell, say), not memory stalls. Under valgrind the
# AVX2 variants of the kernels run (valgrind has no AVX-512).
#
# Usage: benchmarks/profile.sh [T B I H [layers [directions]]]   (default 20 32 128 128:
# the benchmark's (200, 32, 128, 128) over fewer steps, the same shares per
# step; valgrind runs about 100x slower than the CPU)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
shape=("${@:-20 32 128 128}")
read -r T B I H L D <<<"${shape[*]}"
bash .ci/install-deps.sh
build=build/profile
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLSTM_BUILD_TESTS=OFF \
  -DLSTM_BUILD_EXAMPLES=OFF -DLSTM_BUILD_BENCHMARKS=ON >/dev/null
cmake --build "$build" -j "$(nproc)" --target bench_core >/dev/null
out=$(mktemp /tmp/liblstm-callgrind.XXXXXX)
OPENBLAS_NUM_THREADS=1 valgrind --tool=callgrind --callgrind-out-file="$out" \
  "$build/benchmarks/bench_core" --no-mixed "$T" "$B" "$I" "$H" 1 "${L:-1}" "${D:-1}" >/dev/null
callgrind_annotate "$out" | sed -n '/file:function/,/^$/p' | head -12
echo "(full profile: $out)"
