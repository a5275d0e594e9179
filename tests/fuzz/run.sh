#!/usr/bin/env bash
# Fuzzes the model-file loader (fuzz_load.c) and the public API (fuzz_api.c)
# with libFuzzer, AddressSanitizer (leaks included) and
# UndefinedBehaviorSanitizer:
#
#   tests/fuzz/run.sh [SECONDS] [LIBFUZZER_OPTION...]     (SECONDS: 60)
#
# Builds src/*.c with each target with clang into a temporary directory, then
# fuzzes a copy of each target's corpus (tests/fuzz/corpus, corpus_api; the
# committed corpora are never changed), half of SECONDS each, one after the
# other. Prints libFuzzer's final statistics and a summary line per target,
# and exits non-zero when libFuzzer found a crash, a leak, a timeout or an
# allocation over its limit in either. The temporary directory is removed on
# success and kept on failure, with the failing inputs in it.
#
# LSTM_FUZZ_TARGETS="fuzz_api" (or "fuzz_load") fuzzes one target alone, for
# all of SECONDS.
#
# Needs (Debian 12): clang, libclang-rt-14-dev (libFuzzer and the sanitizer
# runtimes), libopenblas-dev. Environment: CLANG (default clang);
# LSTM_FUZZ_KEEP=1 keeps the temporary directory (and the grown corpus) on
# success too.
set -euo pipefail

seconds=${1:-60}
[ $# -gt 0 ] && shift
read -r -a targets <<<"${LSTM_FUZZ_TARGETS:-fuzz_load fuzz_api}"
case $seconds in
  '' | *[!0-9]* | 0) echo "run.sh: SECONDS must be a positive integer, not '$seconds'" >&2; exit 2 ;;
esac
[ "$seconds" -ge ${#targets[@]} ] || { echo "run.sh: SECONDS must be at least ${#targets[@]}" >&2; exit 2; }
for target in "${targets[@]}"; do
  case $target in
    fuzz_load | fuzz_api) ;;
    *) echo "run.sh: unknown target '$target' in LSTM_FUZZ_TARGETS" >&2; exit 2 ;;
  esac
done

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

for target in "${targets[@]}"; do
  echo "run.sh: building $build/$target with $("$cc" --version | head -n 1)"
  if ! "$cc" -std=c11 -g -O1 -fno-omit-frame-pointer \
       -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
       -fno-math-errno -ffp-contract=off -Wall -Wextra \
       -DLSTM_FUZZ_LIBFUZZER -I"$top/include" -I"$top/src" "${blas_cflags[@]}" \
       "$top"/src/*.c "$here/$target.c" "${blas_libs[@]}" -lm \
       -o "$build/$target" 2>"$build/build-$target.log"; then
    cat "$build/build-$target.log" >&2
    if grep -q "fuzzer" "$build/build-$target.log"; then echo "$fuzzer_hint" >&2; fi
    echo "run.sh: the build failed; see $build" >&2
    exit 2
  fi
done

# Tokens of the format, so that mutations can write tags and names.
cat >"$build/model.dict" <<'EOF'
magic="LSTMFILE"
conf="CONF"
tens="TENS"
optm="OPTM"
netw="NETW"
embd="EMBD"
head="HEAD"
meta="META"
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
qtns="QTNS"
embq="EMBQ"
hdq="HDQ "
precision_bf16="\x01\x00\x00\x00"
precision_int8="\x02\x00\x00\x00"
bf16_inf="\x80\x7f"
bf16_subnormal="\x01\x00"
q_min="\x80"
scale_largest="\xff\xff\xff\x7b"
scale_too_large="\x00\x00\x00\x7c"
float_max="\xff\xff\x7f\x7f"
EOF

export OPENBLAS_NUM_THREADS=1 # tiny matrices; no BLAS thread pool
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# final_stat LOG NAME: the last value libFuzzer printed for stat::NAME.
final_stat() { sed -n "s/^stat::$2: *\([0-9][0-9]*\).*/\1/p" "$1" | tail -n 1; }

# fuzz TARGET SECONDS: one target on a copy of its corpus; 0 when nothing was found.
fuzz() {
  local target=$1 seconds=$2 corpus dictionary=()
  case $target in
    fuzz_load) corpus=corpus dictionary=(-dict=model.dict) ;;
    fuzz_api) corpus=corpus_api ;;
  esac
  local work=$build/$target.run log=$build/$target.log
  mkdir -p "$work/corpus" "$work/artifacts"
  cp -R "$here/$corpus/." "$work/corpus/"
  local seeds status=0
  seeds=$(find "$work/corpus" -type f | wc -l)
  echo "run.sh: fuzzing $target for $seconds s from $seeds seed inputs (log: $log)"
  (cd "$build" && "./$target" -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 \
     -timeout=10 -print_final_stats=1 "${dictionary[@]}" -artifact_prefix="$work/artifacts/" \
     "${extra[@]}" "$work/corpus") >"$log" 2>&1 || status=$?

  grep '^stat::' "$log" || true
  local runs rate took found corpus_now
  runs=$(final_stat "$log" number_of_executed_units)
  rate=$(final_stat "$log" average_exec_per_sec)
  took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)
  found=$(find "$work/artifacts" -type f | wc -l)
  corpus_now=$(find "$work/corpus" -type f | wc -l)

  if [ "$status" -ne 0 ] || [ "$found" -ne 0 ] || [ -z "$runs" ]; then
    echo "----- the end of libFuzzer's log -----" >&2
    tail -n 60 "$log" >&2
    echo "--------------------------------------" >&2
    for input in "$work"/artifacts/*; do
      [ -f "$input" ] || continue
      echo "run.sh: failing input $input ($(wc -c <"$input") bytes); replay: $build/$target $input" >&2
    done
    echo "$target: FAILED (libFuzzer exit status $status, $found failing input(s), ${runs:-?} executions); kept $build" >&2
    return 1
  fi
  echo "$target: $runs executions in ${took:-$seconds} s ($rate exec/s), corpus $seeds -> $corpus_now inputs, no crash"
}

# ---- fuzz -----------------------------------------------------------------------
extra=("$@")
failures=0
left=$seconds
for n in "${!targets[@]}"; do
  share=$((left / (${#targets[@]} - n)))
  left=$((left - share))
  fuzz "${targets[$n]}" "$share" || failures=$((failures + 1))
done
[ "$failures" -eq 0 ] || exit 1
[ "${LSTM_FUZZ_KEEP:-0}" = 1 ] && echo "run.sh: kept $build" || keep=0
