#!/usr/bin/env bash
# Fuzzes the model-file loader with libFuzzer, AddressSanitizer (leaks
# included) and UndefinedBehaviorSanitizer:
#
#   tests/fuzz/run.sh [SECONDS] [LIBFUZZER_OPTION...]     (SECONDS: 60)
#
# Builds src/*.c and tests/fuzz/fuzz_load.c with clang into a temporary
# directory, fuzzes a copy of tests/fuzz/corpus (the committed corpus is never
# changed) for SECONDS, prints libFuzzer's final statistics and a summary line,
# and exits non-zero when libFuzzer found a crash, a leak, a timeout or an
# allocation over its limit. The temporary directory is removed on success and
# kept on failure, with the failing input in it.
#
# Needs (Debian 12): clang, libclang-rt-14-dev (libFuzzer and the sanitizer
# runtimes), libopenblas-dev. Environment: CLANG (default clang);
# LSTM_FUZZ_KEEP=1 keeps the temporary directory (and the grown corpus) on
# success too.
set -euo pipefail

seconds=${1:-60}
[ $# -gt 0 ] && shift
case $seconds in
  '' | *[!0-9]* | 0) echo "run.sh: SECONDS must be a positive integer, not '$seconds'" >&2; exit 2 ;;
esac

top=$(cd "$(dirname "$0")/../.." && pwd)
here=$top/tests/fuzz
cc=${CLANG:-clang}

# ---- toolchain: clang and its libFuzzer runtime --------------------------------
if ! command -v "$cc" >/dev/null; then
  echo "run.sh: $cc not found; install clang (apt-get install clang libclang-rt-14-dev)" >&2
  exit 2
fi
major=$("$cc" -dumpversion | cut -d. -f1)
arch=$(uname -m)
resource=$("$cc" -print-resource-dir)
runtime=""
for candidate in "$resource/lib/linux/libclang_rt.fuzzer-$arch.a" \
                 "$resource/lib/$arch-unknown-linux-gnu/libclang_rt.fuzzer.a"; do
  [ -f "$candidate" ] && runtime=$candidate && break
done
fuzzer_hint="libFuzzer (libclang_rt.fuzzer-$arch.a) comes with clang's compiler-rt: on Debian 12,
apt-get install libclang-rt-$major-dev (check with: dpkg -S libclang_rt.fuzzer)"
if [ -z "$runtime" ]; then
  echo "run.sh: no libFuzzer runtime under $resource/lib" >&2
  echo "$fuzzer_hint" >&2
  exit 2
fi

# ---- OpenBLAS: the Debian flavour directories, else pkg-config ----------------
multiarch=$("$cc" -print-multiarch 2>/dev/null || true)
[ -n "$multiarch" ] || multiarch=$arch-linux-gnu
blas_cflags=() blas_libs=()
for flavour in openblas-pthread openblas-openmp openblas-serial; do
  inc=/usr/include/$multiarch/$flavour lib=/usr/lib/$multiarch/$flavour
  if [ -f "$inc/cblas.h" ] && [ -e "$lib/libopenblas.so" ]; then
    blas_cflags=("-I$inc")
    blas_libs=("-L$lib" "-Wl,-rpath,$lib" -lopenblas)
    break
  fi
done
if [ ${#blas_libs[@]} -eq 0 ]; then
  if command -v pkg-config >/dev/null && pkg-config --exists openblas; then
    read -r -a blas_cflags <<<"$(pkg-config --cflags openblas)"
    read -r -a blas_libs <<<"$(pkg-config --libs openblas)"
  else
    echo "run.sh: OpenBLAS not found; apt-get install libopenblas-dev" >&2
    exit 2
  fi
fi

# ---- build ----------------------------------------------------------------------
build=$(mktemp -d "${TMPDIR:-/tmp}/lstm-fuzz.XXXXXX")
keep=1
trap '[ "$keep" -eq 1 ] || rm -rf "$build"' EXIT

echo "run.sh: building $build/fuzz_load with $("$cc" --version | head -n 1)"
if ! "$cc" -std=c11 -g -O1 -fno-omit-frame-pointer \
     -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
     -fno-math-errno -ffp-contract=off -Wall -Wextra \
     -DLSTM_FUZZ_LIBFUZZER -I"$top/include" -I"$top/src" "${blas_cflags[@]}" \
     "$top"/src/*.c "$here/fuzz_load.c" "${blas_libs[@]}" -lm \
     -o "$build/fuzz_load" 2>"$build/build.log"; then
  cat "$build/build.log" >&2
  if grep -q "fuzzer" "$build/build.log"; then echo "$fuzzer_hint" >&2; fi
  echo "run.sh: the build failed; see $build" >&2
  exit 2
fi

# Tokens of the format, so that mutations can write tags and names.
cat >"$build/model.dict" <<'EOF'
magic="LSTMFILE"
conf="CONF"
tens="TENS"
optm="OPTM"
end="END "
required="\x01\x00\x00\x00"
weight="weight_l"
bias="bias_l"
projection="projection_l"
peephole="peephole_l"
reverse="_reverse"
optim_magic="TPOL"
nan="\x00\x00\xc0\x7f"
inf="\x00\x00\x80\x7f"
EOF

mkdir -p "$build/corpus" "$build/artifacts"
cp -R "$here/corpus/." "$build/corpus/"
seeds=$(find "$build/corpus" -type f | wc -l)

# ---- fuzz -----------------------------------------------------------------------
echo "run.sh: fuzzing for $seconds s from $seeds seed inputs (log: $build/fuzz.log)"
export OPENBLAS_NUM_THREADS=1 # tiny matrices; no BLAS thread pool
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
(cd "$build" && ./fuzz_load -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 \
   -timeout=10 -print_final_stats=1 -dict=model.dict -artifact_prefix="$build/artifacts/" \
   "$@" corpus) >"$build/fuzz.log" 2>&1 || status=$?

# ---- report ---------------------------------------------------------------------
final_stat() { sed -n "s/^stat::$1: *\([0-9][0-9]*\).*/\1/p" "$build/fuzz.log" | tail -n 1; }
grep '^stat::' "$build/fuzz.log" || true
runs=$(final_stat number_of_executed_units)
rate=$(final_stat average_exec_per_sec)
took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$build/fuzz.log" | tail -n 1)
found=$(find "$build/artifacts" -type f | wc -l)
corpus_now=$(find "$build/corpus" -type f | wc -l)

if [ "$status" -ne 0 ] || [ "$found" -ne 0 ] || [ -z "$runs" ]; then
  echo "----- the end of libFuzzer's log -----" >&2
  tail -n 60 "$build/fuzz.log" >&2
  echo "--------------------------------------" >&2
  for input in "$build"/artifacts/*; do
    [ -f "$input" ] || continue
    echo "run.sh: failing input $input ($(wc -c <"$input") bytes); replay: $build/fuzz_load $input" >&2
  done
  echo "fuzz_load: FAILED (libFuzzer exit status $status, $found failing input(s), ${runs:-?} executions); kept $build" >&2
  exit 1
fi
[ "${LSTM_FUZZ_KEEP:-0}" = 1 ] && echo "run.sh: kept $build" || keep=0
echo "fuzz_load: $runs executions in ${took:-$seconds} s ($rate exec/s), corpus $seeds -> $corpus_now inputs, no crash"
