#!/usr/bin/env bash
# Data-parallel scaling on this machine: training throughput (sequences per
# second) at a fixed global batch, for
#   1 rank  x 1 thread    the baseline
#   1 rank  x 2 threads   liblstm's own threads on both cores
#   2 ranks x 1 thread    lstm_mpi over both cores
# Each is run REPEATS times, interleaved, and the median and best printed.
# Usage: bench_scaling.sh BUILD_DIR [REPEATS] [STEPS]
#   e.g. bash mpi/bench_scaling.sh build/release 5 20
# Shape: global batch 64, T 50, I = H = 256 (override with BATCH, SEQ, HIDDEN).
set -euo pipefail
program=$1/mpi/train_mpi
repeats=${2:-5} steps=${3:-20}
shape=(--batch "${BATCH:-64}" --seq-len "${SEQ:-50}" --input "${HIDDEN:-256}"
       --hidden "${HIDDEN:-256}" --steps "$steps" --bench)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_oob_tcp_if_include=lo
configs=("1 1" "1 2" "2 1") # ranks threads
declare -A results
for ((r = 0; r < repeats; r++)); do
  for config in "${configs[@]}"; do
    read -r ranks threads <<<"$config"
    rate=$(OPENBLAS_NUM_THREADS=$threads mpirun -n "$ranks" "$program" "${shape[@]}" |
           sed -n 's/.*, \([0-9.]*\) sequences\/s/\1/p')
    results[$config]+="$rate "
  done
done
echo "global batch ${BATCH:-64}, T ${SEQ:-50}, I = H = ${HIDDEN:-256}, $steps steps," \
     "$repeats runs each; load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-22s %12s %12s   %s\n' configuration median best "all runs (sequences/s)"
for config in "${configs[@]}"; do
  read -r ranks threads <<<"$config"
  sorted=$(tr ' ' '\n' <<<"${results[$config]}" | grep . | sort -g)
  median=$(sed -n "$(( (repeats + 1) / 2 ))p" <<<"$sorted")
  best=$(tail -n 1 <<<"$sorted")
  printf '%-22s %12s %12s   %s\n' "$ranks rank(s) x $threads thread(s)" "$median" "$best" \
         "${results[$config]}"
done
