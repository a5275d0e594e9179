#!/usr/bin/env bash
# Data-parallel scaling on this machine: training throughput (sequences per
# second) at a fixed global batch, for
#   1 rank  x 1 thread    the baseline
#   1 rank  x 2 threads   liblstm's own threads on both cores
#   2 ranks x 1 thread    lstm_mpi over both cores
#   2 x (1 rank x 1 thread, half the batch), at once and independent: what
#                         the two cores deliver to two processes with no MPI
#                         at all, the ceiling for 2 ranks
# Each is run REPEATS times, interleaved; the median and best are printed,
# with rank 0's median time per step in lstm_mpi calls (reducing, and
# waiting for the slower rank).
# Usage: bench_scaling.sh BUILD_DIR [REPEATS] [STEPS]
#   e.g. bash mpi/bench_scaling.sh build/release 5 20
# Shape: global batch 64, T 50, I = H = 256 (override with BATCH, SEQ, HIDDEN).
set -euo pipefail
program=$1/mpi/train_mpi
repeats=${2:-5} steps=${3:-20}
batch=${BATCH:-64}
shape=(--seq-len "${SEQ:-50}" --input "${HIDDEN:-256}" --hidden "${HIDDEN:-256}"
       --steps "$steps" --bench)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_oob_tcp_if_include=lo

# run RANKS THREADS BATCH: prints "sequences/s ms-in-lstm_mpi". No binding:
# Open MPI would bind a lone rank and all its threads to one core, and two
# separate mpirun jobs both to core 0.
run() {
  OPENBLAS_NUM_THREADS=$2 mpirun --bind-to none -n "$1" "$program" --batch "$3" "${shape[@]}" |
    sed -n 's/.*(rank 0: \([0-9.]*\) ms of it in lstm_mpi), \([0-9.]*\) sequences\/s/\2 \1/p'
}
names=("1 rank  x 1 thread" "1 rank  x 2 threads" "2 ranks x 1 thread" "2 independent x 1 thread")
declare -A rates mpi_ms
for ((r = 0; r < repeats; r++)); do
  for name in "${names[@]}"; do
    case $name in
      "1 rank  x 1 thread")  read -r rate ms < <(run 1 1 "$batch") ;;
      "1 rank  x 2 threads") read -r rate ms < <(run 1 2 "$batch") ;;
      "2 ranks x 1 thread")  read -r rate ms < <(run 2 1 "$batch") ;;
      *) # two single-rank jobs on half the batch each, side by side
        half=$(( batch / 2 ))
        run 1 1 "$half" >"${TMPDIR:-/tmp}/bench_scaling.$$" &
        read -r rate_b _ < <(run 1 1 "$half")
        wait
        read -r rate_a _ <"${TMPDIR:-/tmp}/bench_scaling.$$"
        rm -f "${TMPDIR:-/tmp}/bench_scaling.$$"
        rate=$(awk -v a="$rate_a" -v b="$rate_b" 'BEGIN { printf "%.1f", a + b }')
        ms=- ;;
    esac
    rates[$name]+="$rate " mpi_ms[$name]+="$ms "
  done
done

median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | sed -n "$(( (repeats + 1) / 2 ))p"; }
echo "global batch $batch, T ${SEQ:-50}, I = H = ${HIDDEN:-256}, $steps steps, $repeats runs" \
     "each; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-26s %10s %10s %12s   %s\n' configuration median best "lstm_mpi ms" \
       "all runs (sequences/s)"
for name in "${names[@]}"; do
  printf '%-26s %10s %10s %12s   %s\n' "$name" "$(median "${rates[$name]}")" \
         "$(tr ' ' '\n' <<<"${rates[$name]}" | grep . | sort -g | tail -n 1)" \
         "$(median "${mpi_ms[$name]}")" "${rates[$name]}"
done
