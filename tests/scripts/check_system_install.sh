#!/usr/bin/env bash
# A system-wide install, as a user would do it: cmake --install to
# /usr/local, ldconfig, then a consumer built with nothing but
# `pkg-config lstm` (or plain -llstm) finds the library with no rpath and no
# LD_LIBRARY_PATH. The installed files are removed again at the end.
# Usage (as root): check_system_install.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
cleanup() {
  if [ -f "$build/install_manifest.txt" ]; then
    xargs -d '\n' rm -f < "$build/install_manifest.txt"
    rmdir --ignore-fail-on-non-empty /usr/local/include/lstm /usr/local/lib/cmake/lstm \
      2>/dev/null || true
    ldconfig
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

cmake --install "$build" --prefix /usr/local >/dev/null
ldconfig
echo "== pkg-config --modversion lstm: $(pkg-config --modversion lstm)"
# shellcheck disable=SC2046
cc -std=c11 "$src/tests/scripts/consumer/consumer.c" -o "$tmp/pc" $(pkg-config --cflags --libs lstm)
"$tmp/pc"
cc -std=c11 "$src/tests/scripts/consumer/consumer.c" -o "$tmp/plain" -llstm
"$tmp/plain"
ldconfig -p | grep 'liblstm.so.1 ' >/dev/null || { echo "FAIL: ldconfig does not know liblstm.so.1"; exit 1; }
echo "OK: installed to /usr/local, found by ldconfig, pkg-config and the linker"
