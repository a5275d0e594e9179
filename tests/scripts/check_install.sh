#!/usr/bin/env bash
# Installs liblstm into a temporary prefix and builds two consumers against
# that install only: one through pkg-config, one through find_package(lstm).
# Then does the same for a static build of the library, checks that the
# archive defines no global name outside lstm_ and LSTM_, and links it into
# a program that defines fail, crc32c, mem_alloc, ... of its own.
# Usage: check_install.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$(cd "$1" && pwd) build=$(cd "$2" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
consumer=$src/tests/scripts/consumer

check_prefix() { # check_prefix PREFIX KIND
  local prefix=$1 kind=$2
  local pcdir
  pcdir=$(dirname "$(find "$prefix" -name lstm.pc | head -n 1)")
  export PKG_CONFIG_PATH=$pcdir
  echo "== $kind: pkg-config --modversion lstm = $(pkg-config --modversion lstm)"
  [ "$(pkg-config --modversion lstm)" = "$(grep -E '^#define LSTM_VERSION_(MAJOR|MINOR|PATCH)' \
      "$src/include/lstm/version.h" | awk '{print $3}' | paste -sd.)" ]
  local libdir flags
  libdir=$(pkg-config --variable=libdir lstm)
  if [ "$kind" = static ]; then flags=$(pkg-config --static --cflags --libs lstm)
  else flags="$(pkg-config --cflags --libs lstm) -Wl,-rpath,$libdir"; fi
  # shellcheck disable=SC2086
  cc -std=c11 -Wall -Wextra -Werror "$consumer/consumer.c" -o "$tmp/pc_$kind" $flags
  "$tmp/pc_$kind"
  if [ "$kind" = static ] && readelf -d "$tmp/pc_$kind" | grep 'liblstm' >/dev/null; then
    echo "FAIL: the static consumer still needs liblstm.so"; exit 1
  fi
  cmake -S "$consumer" -B "$tmp/cm_$kind" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$tmp/cm_$kind" >/dev/null
  "$tmp/cm_$kind/consumer"
}

cmake --install "$build" --prefix "$tmp/shared" >/dev/null
for f in include/lstm/lstm.h include/lstm/model.h; do
  [ -f "$tmp/shared/$f" ] || { echo "FAIL: $f not installed"; exit 1; }
done
if find "$tmp/shared" -name 'activation.h' -o -name 'workspace.h' | grep . >/dev/null; then
  echo "FAIL: private headers were installed"; exit 1
fi
check_prefix "$tmp/shared" shared

cmake -S "$src" -B "$tmp/static_build" -DBUILD_SHARED_LIBS=OFF -DLSTM_BUILD_TESTS=OFF \
  -DLSTM_BUILD_EXAMPLES=OFF -DLSTM_BUILD_BENCHMARKS=OFF -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$tmp/static_build" -j2 >/dev/null
cmake --install "$tmp/static_build" --prefix "$tmp/static" >/dev/null
check_prefix "$tmp/static" static

# A static archive has no visibility to hide its internals: every global
# name it defines must be public (lstm_, LSTM_) or carry the reserved
# internal prefix (lstm__), so that it never collides with a program's own.
archive=$(find "$tmp/static" -name liblstm.a | head -n 1)
stray=$(nm -g --defined-only "$archive" | awk 'NF == 3 {print $3}' | grep -vE '^(lstm_|LSTM_)' || true)
if [ -n "$stray" ]; then
  echo "FAIL: liblstm.a defines global names outside lstm_ and LSTM_:"; echo "$stray"; exit 1
fi
# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror "$consumer/clash.c" -o "$tmp/clash" \
  $(PKG_CONFIG_PATH=$(dirname "$(find "$tmp/static" -name lstm.pc | head -n 1)") \
    pkg-config --static --cflags --libs lstm)
"$tmp/clash"
echo "OK: shared and static installs consumed through pkg-config and find_package"
