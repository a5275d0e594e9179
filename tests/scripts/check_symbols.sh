#!/usr/bin/env bash
# The exported symbols of liblstm.so.1 are exactly the documented API: every
# LSTM_API function declared in include/lstm/*.h, every name in the version
# script, and nothing else; each exported under the version node the script
# gives it (LSTM_1.0, or a later node for a function added since).
# Usage: check_symbols.sh LIBRARY INCLUDE_DIR VERSION_SCRIPT
set -euo pipefail
lib=$1 include_dir=$2 map=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

soname=$(objdump -p "$lib" | awk '$1 == "SONAME" {print $2}')
if [ "$soname" != "liblstm.so.1" ]; then
  echo "FAIL: SONAME is '$soname', expected liblstm.so.1"; exit 1
fi

# Defined dynamic symbols: "<version> <name>", skipping the version node itself
# and local symbols (aarch64's linker puts the sections .init and .data there).
objdump -T "$lib" | awk '$0 ~ /^[0-9a-f]+ / && $2 != "l" && $0 !~ /\*UND\*/ && $0 !~ /\*ABS\*/ {print $(NF-1), $NF}' \
  | sort > "$tmp/exported"
awk '{print $2}' "$tmp/exported" | sort > "$tmp/exported_names"
grep -ohE 'LSTM_API[^;(]*\blstm_[a-z0-9_]+[[:space:]]*\(' "$include_dir"/lstm/*.h \
  | grep -oE 'lstm_[a-z0-9_]+[[:space:]]*\($' | tr -d ' (' | sort > "$tmp/documented"
grep -oE '^[[:space:]]*lstm_[a-z0-9_]+;' "$map" | tr -d ' ;' | sort > "$tmp/mapped"

status=0
if ! diff -u "$tmp/documented" "$tmp/exported_names"; then
  echo "FAIL: exported symbols (+) differ from the LSTM_API declarations (-)"; status=1
fi
if ! diff -u "$tmp/documented" "$tmp/mapped"; then
  echo "FAIL: the version script (+) differs from the LSTM_API declarations (-)"; status=1
fi
# "<node> <name>" as the version script assigns them
awk '/^LSTM_[0-9.]+[[:space:]]*\{/ {node = $1} /^[[:space:]]*lstm_[a-z0-9_]+;/ {gsub(/[ ;]/, ""); print node, $0}' \
  "$map" | sort > "$tmp/nodes"
if ! diff -u "$tmp/nodes" "$tmp/exported"; then
  echo "FAIL: symbols exported (+) under other version nodes than the script's (-)"; status=1
fi
count=$(wc -l < "$tmp/documented")
if [ "$count" -lt 20 ]; then
  echo "FAIL: only $count documented functions found; the header scan is broken"; status=1
fi
# Every allocation goes through mem_alloc() (src/alloc.c), where
# test_alloc_failure makes each one fail: no other allocating libc call.
allocating=$(objdump -T "$lib" | awk '/\*UND\*/ {print $NF}' | grep -xE \
  'malloc|calloc|realloc|reallocarray|posix_memalign|memalign|valloc|strdup|strndup|fopen|fdopen|tmpfile|v?asprintf|getline|getdelim|opendir|scandir|realpath' \
  || true)
if [ -n "$allocating" ]; then
  echo "FAIL: allocating calls outside mem_alloc():" $allocating; status=1
fi
[ $status -eq 0 ] && echo "OK: $count symbols, all lstm_* under their version nodes ($(awk '{print $1}' "$tmp/nodes" | sort -u | paste -sd ' ' -)), SONAME $soname"
exit $status
