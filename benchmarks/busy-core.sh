#!/usr/bin/env bash
# Two threads on a busy machine (issue 25): times liblstm (bench_core
# --no-mixed, inference and training) and oneDNN (bench_onednn) with 1 and 2
# threads while another process keeps one core busy, and with no load for
# reference, in one run. The requirement it checks: at two threads with one
# core taken, liblstm stays within 1.3x of its own one-thread time.
#
# Loads (load= in the CSV):
#   quiet     nothing else running (the machine's other tenants aside)
#   busy      one busy-loop process, unpinned: the realistic case, where the
#             scheduler moves it between the cores as it likes
#   pinned    the same loop pinned to the last core with taskset: the
#             competitor then never yields that core to a migrating thread,
#             which is the harder case for a pool whose worker lands there
# Threads: OPENBLAS_NUM_THREADS for liblstm (its workspace's pool follows the
# BLAS's thread count, workspace.c), OMP_NUM_THREADS for oneDNN (with
# OPENBLAS_NUM_THREADS=1, as benchmarks/run runs it).
#
# Every load, shape, thread count and implementation is measured in each of
# several rounds, alternating, and busy_report.py keeps each one's best round
# (as benchmarks/run and report.py do: the host's other load only ever slows a
# measurement down).
#
# With --ref GITREF, liblstm as of GITREF (built from `git archive` into
# build/busy-ref) runs in the same rounds as impl=liblstm_ref: before/after.
#
# Writes benchmarks/results/busy.csv and busy.md, and prints busy.md.
# Usage: benchmarks/busy-core.sh [--quick] [--ref GITREF] [--loads "quiet busy pinned"]
#                                [--precisions "fp32 bf16 int8"]
# (--precisions: bench_core's and bench_onednn's --precision, fp32 alone by
# default; bf16 times inference and liblstm's training, int8 inference.)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
quick=0
ref=""
loads="quiet busy pinned"
precisions="fp32"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --ref) ref="$2"; shift ;;
    --loads) loads="$2"; shift ;;
    --precisions) precisions=$2; shift ;;
    *) echo "usage: $0 [--quick] [--ref GITREF] [--loads \"quiet busy pinned\"] [--precisions \"fp32 bf16 int8\"]" >&2; exit 2 ;;
  esac
  shift
done
unset OPENBLAS_CORETYPE # (see benchmarks/run)
command -v taskset >/dev/null || { echo "busy-core.sh: needs taskset (util-linux)" >&2; exit 2; }

build=build/busy
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DLSTM_BUILD_TESTS=OFF \
  -DLSTM_BUILD_EXAMPLES=OFF -DLSTM_BUILD_BENCHMARKS=ON >/dev/null
cmake --build "$build" -j 2 --target bench_core >/dev/null
if cmake --build "$build" -j 2 --target bench_onednn >/dev/null 2>&1; then
  onednn=$build/benchmarks/bench_onednn
else
  onednn=""
  echo "busy-core.sh: no bench_onednn (libdnnl-dev missing?): oneDNN left out" >&2
fi
if [ -n "$ref" ]; then
  src=build/busy-ref-src
  rm -rf "$src" && mkdir -p "$src"
  git archive "$ref" | tar -x -C "$src"
  cmake -S "$src" -B build/busy-ref -DCMAKE_BUILD_TYPE=Release -DLSTM_BUILD_TESTS=OFF \
    -DLSTM_BUILD_EXAMPLES=OFF -DLSTM_BUILD_BENCHMARKS=ON >/dev/null
  cmake --build build/busy-ref -j 2 --target bench_core >/dev/null
fi

# The competitor: a shell busy loop (no system calls, no memory traffic to
# speak of: it takes a core and nothing else).
competitor=""
start_load() { # start_load LOAD
  case "$1" in
    quiet) competitor="" ;;
    busy) sh -c 'while :; do :; done' & competitor=$! ;;
    pinned) taskset -c "$(( $(nproc) - 1 ))" sh -c 'while :; do :; done' & competitor=$! ;;
  esac
  sleep 0.2 # let the scheduler place it
}
stop_load() {
  if [ -n "$competitor" ]; then
    kill "$competitor" 2>/dev/null || true
    wait "$competitor" 2>/dev/null || true
    competitor=""
  fi
}
trap stop_load EXIT

# T B I H: the single layers of benchmarks/run.
shapes=("100 1 256 256" "100 16 512 512" "100 64 512 512" "50 64 1024 1024"
        "200 32 128 128" "2000 8 256 256")
results=benchmarks/results
raw=$results/busy-raw.txt
: > "$raw"
rounds=2
[ $quick -eq 1 ] && rounds=1
start=$(date +%s)
for round in $(seq "$rounds"); do
  for load in $loads; do
    start_load "$load"
    for shape in "${shapes[@]}"; do
      read -r T B I H <<<"$shape"
      work=$((T * B * H * (I + H) / 1000000))
      reps=$(( work > 400 ? 3 : (work > 100 ? 5 : 7) ))
      [ $quick -eq 1 ] && reps=3
      echo "== round $round/$rounds load=$load T=$T B=$B I=$I H=$H (median of $reps)" >&2
      for precision in $precisions; do
        for threads in 1 2; do
          {
            OPENBLAS_NUM_THREADS=$threads "$build/benchmarks/bench_core" --no-mixed \
              --precision "$precision" "$T" "$B" "$I" "$H" "$reps" | grep '^impl='
            if [ -n "$ref" ]; then
              OPENBLAS_NUM_THREADS=$threads build/busy-ref/benchmarks/bench_core --no-mixed \
                --precision "$precision" "$T" "$B" "$I" "$H" "$reps" | grep '^impl=' \
                | sed 's/^impl=liblstm /impl=liblstm_ref /'
            fi
            # (a precision oneDNN has no primitive for exits with 2: left out)
            if [ -n "$onednn" ]; then
              OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=1 "$onednn" --precision "$precision" \
                "$T" "$B" "$I" "$H" "$reps" | grep '^impl=' || true
            fi
          } | sed "s/\$/ load=$load round=$round/" >> "$raw"
        done
      done
    done
    stop_load
  done
done
echo "measured in $(( $(date +%s) - start )) s" >&2

/usr/bin/python3 benchmarks/busy_report.py "$raw" "$results"
cat "$results/busy.md"
