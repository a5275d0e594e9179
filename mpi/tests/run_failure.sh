#!/usr/bin/env bash
# A rank that fails mid-run must end the whole job with an error, not leave
# the other ranks waiting in a collective.
# Usage: run_failure.sh abort|exit MPIRUN... PROGRAM CHECKPOINT
#   abort: rank 1 gets a NaN input at step 3, reports liblstm's error and
#          calls MPI_Abort();
#   exit:  rank 1 dies at step 3 without telling MPI (_exit without
#          MPI_Finalize), as a crash would.
set -uo pipefail
how=$1; shift
limit=60
log=$(mktemp)
trap 'rm -f "$log"' EXIT
start=$(date +%s)
timeout "$limit" "$@" --fail-rank 1 --fail-step 3 --fail-how "$how" >"$log" 2>&1
status=$?
seconds=$(( $(date +%s) - start ))
cat "$log"
echo "run_failure($how): exit status $status after ${seconds} s"
if [ "$status" -eq 124 ]; then
  echo "FAIL: the job still ran after $limit s: the other ranks hang"; exit 1
fi
if [ "$status" -eq 0 ]; then
  echo "FAIL: the job exited 0 although a rank failed"; exit 1
fi
grep "rank 1 fails at step 3 ($how)" "$log" >/dev/null ||
  { echo "FAIL: rank 1 never reached its failure: the job failed for another reason"; exit 1; }
if grep "completed without a failure" "$log" >/dev/null; then
  echo "FAIL: a rank finished its training"; exit 1
fi
echo "ok: rank 1's failure ended the job with status $status"
