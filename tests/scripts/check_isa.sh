#!/usr/bin/env bash
# The kernels' narrower variants, which this machine's CPU may never pick:
# the numerical tests of a build run again under qemu-user's x86-64 CPU
# models Haswell (AVX2 and FMA, no AVX-512) and Nehalem (the SSE2
# baseline), through the same run-time dispatch (src/compiler.h).
# Usage: check_isa.sh BUILD_DIR    (needs qemu-user)
set -euo pipefail
build=$(cd "$1" && pwd)
tests=(test_gemm test_activation test_parity test_network_parity test_gradcheck test_stream
       test_optim_parity test_portable)
failed=0
for cpu in Haswell Nehalem; do
  start=$SECONDS
  for t in "${tests[@]}"; do
    # test_parity and friends find their golden files by absolute paths.
    if ! (cd "$build/tests" && qemu-x86_64 -cpu "$cpu" "./$t" >"$build/tests/$t.$cpu.log" 2>&1); then
      echo "FAIL: $t on qemu's $cpu (log: $build/tests/$t.$cpu.log)"; failed=1
    fi
  done
  echo "== ${#tests[@]} tests on qemu's $cpu: $((SECONDS - start)) s"
done
exit $failed
