#!/usr/bin/env bash
# Every C and C++ file of the tree follows .clang-format: fails, naming the
# files and showing the first differences, when one does not. Folders with a
# .clang-format of DisableFormat (the golden data, the 0.1.0 headers) are
# kept as they were written.
#
#   tests/scripts/check_format.sh          check
#   tests/scripts/check_format.sh --fix    format the files in place
#
# The style is clang-format 14's (Debian 12's): other versions break some
# lines differently, so the check uses clang-format-14 where it is installed.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
format=$(command -v clang-format-14 || command -v clang-format || true)
[ -n "$format" ] || { echo "check_format: clang-format not found; apt-get install clang-format" >&2; exit 2; }
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files '*.c' '*.h' '*.cpp')
else
  mapfile -t files < <(find . -path ./build -prune -o -type f \( -name '*.c' -o -name '*.h' -o -name '*.cpp' \) -print | sed 's|^\./||' | sort)
fi
[ ${#files[@]} -gt 50 ] || { echo "check_format: only ${#files[@]} files found" >&2; exit 2; }
if [ "${1:-}" = --fix ]; then
  "$format" -i "${files[@]}"
  exit 0
fi
bad=()
for file in "${files[@]}"; do
  if ! "$format" "$file" | cmp -s - "$file"; then
    bad+=("$file")
  fi
done
if [ ${#bad[@]} -ne 0 ]; then
  for file in "${bad[@]:0:3}"; do
    "$format" "$file" | diff -u "$file" - | head -20 || true
  done
  echo "check_format: FAIL: ${#bad[@]} files differ from .clang-format: ${bad[*]}"
  echo "check_format: tests/scripts/check_format.sh --fix formats them"
  exit 1
fi
echo "check_format: OK: ${#files[@]} files follow .clang-format ($("$format" --version | sed 's/.*version //'))"
