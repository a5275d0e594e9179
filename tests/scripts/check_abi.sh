#!/usr/bin/env bash
# The ABI guard: liblstm.so.1 built from this tree against the committed
# baseline abi/liblstm.so.1.abi, with libabigail (Debian's abigail-tools).
#
#   tests/scripts/check_abi.sh            check; exit 1 when the LSTM_1.0 ABI broke
#   tests/scripts/check_abi.sh --update   rewrite the baseline from this tree
#
# It builds the shared library alone with debug info (RelWithDebInfo: abidw
# reads the types from DWARF) in build/abi, and describes it with abidw,
# keeping only the exported functions and the types of the public headers.
# Then it fails on:
#   - anything abidiff calls a change to what the baseline has: a function
#     removed, a parameter or return type changed, a struct member changed
#     or moved, an enumerator renumbered (abidiff's exit bits 4 and 8). The
#     one allowed change is new members at the end of the structs that
#     start with struct_size and grow that way (lstm_config, the argument
#     structs of the sequence calls, ...);
#   - a function added to a version node the baseline has: new functions go
#     to a new node (src/lstm.map says how), so LSTM_1.0 never changes.
# Functions added after LSTM_1.1 take at most six parameters: more go into an
# argument struct (lstm_sequences and its kind), whose named fields cannot be
# swapped unnoticed as positional floats can.
# Last, a program built against the 0.1.0 headers (tests/scripts/consumer/
# lstm-0.1.0) runs on this library (old_headers.c there checks what it
# computes).
# After adding a node, run --update and commit the new baseline with it.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
baseline=abi/liblstm.so.1.abi
build=build/abi

for tool in abidw abidiff; do
  command -v "$tool" >/dev/null || { echo "check_abi: $tool not found; apt-get install abigail-tools" >&2; exit 2; }
done

# Paths in the debug info relative to the tree, so the baseline does not name
# the directory it was made in.
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS="-fdebug-prefix-map=$top=." \
  -DLSTM_BUILD_TESTS=OFF -DLSTM_BUILD_EXAMPLES=OFF -DLSTM_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build "$build" --target lstm -j "$(nproc)" >/dev/null
lib=$build/liblstm.so.1
abidw --headers-dir include/lstm --drop-private-types --exported-interfaces-only \
  --no-show-locs --no-comp-dir-path --no-corpus-path --no-elf-needed --type-id-style hash \
  --out-file "$build/liblstm.so.1.abi" "$lib"
functions=$(grep -c '<function-decl ' "$build/liblstm.so.1.abi" || true)
[ "$functions" -ge 20 ] || { echo "check_abi: abidw found only $functions functions in $lib; no debug info?" >&2; exit 2; }

if [ "${1:-}" = --update ]; then
  cp "$build/liblstm.so.1.abi" "$baseline"
  echo "check_abi: wrote $baseline ($functions functions)"
  exit 0
fi
[ -f "$baseline" ] || { echo "check_abi: no $baseline; make it with --update" >&2; exit 2; }

# Exported functions as name@version.
symbols() { sed -n "s/.*<elf-symbol name='\([^']*\)' version='\([^']*\)'.*/\1@\2/p" "$1" | sort; }
# The members of a struct as "offset name type-id", in order.
members() {
  awk -v q="'" -v tag="<class-decl name='$2' " '
    index($0, tag) && !/is-declaration-only/ {inside = 1; next}
    inside && /<\/class-decl>/ {exit}
    inside && /layout-offset-in-bits/ {split($0, f, q); offset = f[4]}
    inside && /<var-decl / {split($0, f, q); print offset, f[2], f[4]}' "$1"
}
# abidiff's exit status is a bit set: 1 error, 2 usage error, 4 an ABI change,
# 8 an incompatible ABI change. The report shows everything; the status that
# counts leaves out the added functions, which set bit 4 too.
abidiff_status() { local status=0; abidiff "$@" "$baseline" "$new" >"$build/abidiff.txt" || status=$?; echo $status; }
new=$build/liblstm.so.1.abi
failures=() grew=""
status=$(abidiff_status)
cat "$build/abidiff.txt"
[ $((status & 3)) -eq 0 ] || { echo "check_abi: abidiff failed (exit status $status)" >&2; exit 2; }
status=$(abidiff_status --no-added-syms)
if [ $((status & 8)) -ne 0 ]; then
  failures+=("an incompatible change, such as a function removed (abidiff exit status $status)")
elif [ $((status & 4)) -ne 0 ]; then
  # The one allowed change: members appended to the structs that start with
  # struct_size (the library reads no further than the caller's struct_size).
  # abidiff with those structs suppressed must see nothing, and each must
  # start with exactly its old members.
  grown=(lstm_config lstm_optim_options lstm_sequences lstm_inputs lstm_outputs lstm_output_grads
         lstm_input_grads lstm_embedding_config)
  for name in "${grown[@]}"; do
    printf '[suppress_type]\n  type_kind = struct\n  name = %s\n  has_data_member_inserted_at = end\n' "$name"
  done >"$build/grown.abignore"
  [ "$(abidiff_status --no-added-syms --suppressions "$build/grown.abignore")" -eq 0 ] ||
    failures+=("a change to existing functions or their types (abidiff exit status $status)")
  for name in "${grown[@]}"; do
    old_members=$(members "$baseline" "$name")
    new_members=$(members "$new" "$name")
    if [ "$(head -n "$(wc -l <<<"$old_members")" <<<"$new_members")" != "$old_members" ]; then
      failures+=("$name: members changed, not only appended")
    elif [ "$new_members" != "$old_members" ]; then
      grew+=" $name"
    fi
  done
fi
# A new function must not join a node the baseline has.
misplaced=$(comm -13 <(symbols "$baseline") <(symbols "$new") |
            awk -F@ 'NR == FNR {old[$2] = 1; next} $2 in old' <(symbols "$baseline") -)
[ -z "$misplaced" ] || failures+=("new functions in a version node of the baseline: $(echo $misplaced)")

long_calls=$(awk -v q="'" '
  /<function-decl / {split($0, f, q); name = f[2]; node = $0; sub(/.*@@/, "", node);
                     sub(/'"'"'.*/, "", node); count = 0; next}
  name != "" && /<parameter / {count++}
  name != "" && /<\/function-decl>/ {
    if (node != "LSTM_1.0" && node != "LSTM_1.1" && count > 6) print name "(" count ")"; name = ""}' "$new")
[ -z "$long_calls" ] || failures+=("functions added after LSTM_1.1 with more than six parameters: $(echo $long_calls)")
if [ ${#failures[@]} -ne 0 ]; then
  printf 'check_abi: FAIL: %s\n' "${failures[@]}"
  echo "check_abi: a compatible release only adds functions, in a new version node (src/lstm.map)"
  exit 1
fi
cc -std=c11 -O1 -Wall -Wextra -Werror -Itests/scripts/consumer/lstm-0.1.0/include \
  tests/scripts/consumer/old_headers.c -o "$build/old_headers" -L"$build" -l:liblstm.so.1 -lm
LD_LIBRARY_PATH=$build "$build/old_headers" ||
  { echo "check_abi: FAIL: a program built with the 0.1.0 headers does not run unchanged" >&2; exit 1; }
added=$(comm -13 <(symbols "$baseline") <(symbols "$new") | wc -l)
echo "check_abi: OK: the $(symbols "$baseline" | wc -l) functions of $baseline keep their ABI;" \
     "$added added in new nodes${grew:+; grown at the end:$grew}"
