#!/usr/bin/env bash
# The C test suite on other CPUs, as zstd's CI does it: cross-built with
# Debian 12's cross compilers and run under qemu-user.
#   aarch64  the non-x86 build: no CPU clones, GCC's vector extensions on
#            NEON for the elementwise kernels, and the per-step products on
#            OpenBLAS (LSTM_STEP_PRODUCTS=auto picks blas on every CPU but
#            x86-64), as a user there gets them;
#   s390x    a big-endian host: every encoder and decoder of the model
#            files (src/bytes.h, src/io.c) and the CRC-32C, and a CPU with
#            no vector unit at Debian's baseline (z196); its products on
#            OpenBLAS too.
# Files written on each host load on the others bit for bit: test_portable
# checks every host against one file written on x86-64 (tests/unit/data/portable).
#
# Usage: tests/scripts/cross.sh [ARCH...]    ARCH: aarch64, s390x (default: both)
#
# For each ARCH: installs what it needs (the target's architecture added to
# dpkg, then .ci/install-deps.sh: cross gcc, the target's libc headers,
# OpenBLAS and CMocka, qemu-user), configures build/cross-ARCH with
# cmake/toolchains/<triplet>.cmake (-Werror, no examples, benchmarks or MPI),
# builds, and runs ctest there (log in build/cross-ARCH/ctest.log), with
# each phase's time. Exits non-zero when a build or a test failed.
#
# What does not run:
#   - everywhere: test_install and test_bindings (they build consumers and
#     run Python and cargo on this machine, not the target's), test_cxx
#     (the toolchains have no C++: the headers are the same on every host),
#     the examples and benchmarks (minutes of training under emulation),
#     MPI; test_symbols runs with the target's objdump.
#   - on s390x, test_determinism and test_threads: the thread pools'
#     results, run to run, process to process and at any thread count, are
#     the same C code on every non-x86 CPU, which aarch64 runs, and qemu
#     runs a guest's threads on the host's memory order anyway; on s390x
#     they took 210 and 55 s, which would double the stage.
#     test_gemm runs on both (the packings and the products through the
#     BLAS, against a plain product; the library's own kernel, which they
#     do not use, is tested on x86-64, down to its SSE2 baseline, by
#     tests/check_isa.sh and the memcheck build). test_determinism's new
#     process runs under qemu too, through a script (tests/CMakeLists.txt).
#   - with LSTM_TEST_QUICK set, as under memcheck: test_precision's
#     accuracy on the benchmark shapes (its double-precision reference took
#     most of the two minutes test_precision took on s390x).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"

[ $# -gt 0 ] || set -- aarch64 s390x
jobs=$(nproc)
status=0
for arch in "$@"; do
  case $arch in
    aarch64) debian=arm64 triplet=aarch64-linux-gnu exclude='' ;;
    s390x) debian=s390x triplet=s390x-linux-gnu
           exclude='^(test_determinism|test_threads)$' ;;
    *) echo "cross.sh: unknown architecture '$arch' (aarch64 or s390x)" >&2; exit 2 ;;
  esac
  dir=build/cross-$arch
  mkdir -p "$dir"
  rm -f "$dir/ctest.log"

  echo "=== cross-$arch: install"
  start=$SECONDS
  bash .ci/install-deps.sh "gcc-$triplet" "libc6-dev-$debian-cross" qemu-user \
    "libopenblas-dev:$debian" "libcmocka-dev:$debian"
  install_time=$((SECONDS - start))

  echo "=== cross-$arch: configure and build"
  start=$SECONDS
  if ! { cmake -S . -B "$dir" -DCMAKE_TOOLCHAIN_FILE="$top/cmake/toolchains/$triplet.cmake" \
           -DLSTM_WERROR=ON -DCMAKE_BUILD_TYPE=Release -DLSTM_BUILD_EXAMPLES=OFF \
           -DLSTM_BUILD_BENCHMARKS=OFF -DLSTM_MPI=OFF &&
         cmake --build "$dir" -j "$jobs"; } >"$dir/build.log" 2>&1; then
    grep -E 'error|warning' "$dir/build.log" | head -40 || tail -40 "$dir/build.log"
    echo "cross-$arch: the build failed (log: $dir/build.log)"
    status=1
    continue
  fi
  build_time=$((SECONDS - start))

  echo "=== cross-$arch: test under qemu-$arch"
  start=$SECONDS
  if ! LSTM_TEST_QUICK=1 ctest --test-dir "$dir" --output-on-failure -j "$jobs" ${exclude:+-E "$exclude"} |
       tee "$dir/ctest.log"; then
    status=1
  fi
  echo "=== cross-$arch: install ${install_time} s, build ${build_time} s, test $((SECONDS - start)) s"
done
exit $status
