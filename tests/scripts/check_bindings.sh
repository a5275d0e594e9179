#!/usr/bin/env bash
# Consumers of an installed liblstm, built from nothing in the build tree:
# installs into a temporary prefix, then builds and runs the C++ consumer
# (through pkg-config), the Python tests (given the installed library) and
# the Rust tests (build.rs asks pkg-config).
# Usage: check_bindings.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$(cd "$1" && pwd) build=$(cd "$2" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
PKG_CONFIG_PATH=$(dirname "$(find "$tmp/prefix" -name lstm.pc | head -n 1)")
export PKG_CONFIG_PATH
unset LSTM_LIBRARY
libdir=$(pkg-config --variable=libdir lstm)
echo "== installed liblstm $(pkg-config --modversion lstm) in $tmp/prefix"

echo "== C++ consumer through pkg-config"
# shellcheck disable=SC2046
c++ -std=c++11 -Wall -Wextra -Werror "$src/tests/unit/test_cxx.cpp" -o "$tmp/cxx" \
  $(pkg-config --cflags --libs lstm) -Wl,-rpath,"$libdir"
"$tmp/cxx"

echo "== Python bindings and converters (pytest), against the installed library"
LSTM_LIBRARY="$libdir/liblstm.so.1" PYTHONPATH="$src/bindings/python" \
  /usr/bin/python3 -m pytest -q -p no:cacheprovider "$src/bindings/python/tests"

echo "== Rust crate (cargo test --offline), library found through pkg-config"
CARGO_TARGET_DIR="$tmp/target" cargo test --offline --quiet \
  --manifest-path "$src/bindings/rust/Cargo.toml"
echo "OK: every consumer built and ran against the install"
