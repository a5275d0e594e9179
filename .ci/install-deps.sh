#!/usr/bin/env bash
# Installs the Debian 12 packages liblstm needs to build, test and run its
# demo, when any is missing. Runs as root (or through sudo when available).
# With package names as arguments, it installs only those (when missing):
# examples/run-demo.sh needs far fewer than the test suite. A name with an
# architecture (libcmocka-dev:arm64, for tests/scripts/cross.sh) has that
# architecture added to dpkg first.
set -euo pipefail
packages=(
  build-essential cmake pkg-config   # compiler, build system, lstm.pc
  libopenblas-dev                    # the default CBLAS
  libblis-dev                        # the alternative CBLAS, built in CI
  libcmocka-dev                      # the test framework
  clang libclang-rt-14-dev           # AddressSanitizer + UndefinedBehaviorSanitizer build
  clang-format                       # the style check (.clang-format)
  g++                                # the C++ header test
  binutils                           # objdump, for the symbol test
  valgrind                           # the memcheck stage
  qemu-user                          # the narrower x86 kernels and the cross builds' tests
  abigail-tools                      # abidw and abidiff, for the ABI check
  python3-torch python3-numpy python3-pytest  # the Python converters and their tests
  python3-onnx                       # lstm.convert.from_onnx and its tests
  libopenmpi-dev openmpi-bin         # data-parallel training (mpi/) and its multi-rank tests
)
[ $# -eq 0 ] || packages=("$@")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep "ok installed" >/dev/null || missing+=("$p")
done
# The Rust bindings need a cargo: the machine's own if it has one, else Debian's.
[ $# -gt 0 ] || command -v cargo >/dev/null 2>&1 || missing+=(cargo)
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-deps: installing ${missing[*]}"
for p in "${missing[@]}"; do
  arch=${p##*:}
  if [ "$arch" != "$p" ] && [ "$arch" != "$(dpkg --print-architecture)" ] &&
     ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
    $sudo dpkg --add-architecture "$arch"
  fi
done
$sudo apt-get update
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${missing[@]}"
