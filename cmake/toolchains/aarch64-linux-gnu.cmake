# Cross build for 64-bit ARM (Debian 12's gcc-aarch64-linux-gnu), run under
# qemu-aarch64: the kernels' non-x86 code. tests/scripts/cross.sh uses it:
#   cmake -S . -B build/cross-aarch64 \
#     -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(LSTM_CROSS_TRIPLET aarch64-linux-gnu)
set(LSTM_CROSS_QEMU qemu-aarch64)
include(${CMAKE_CURRENT_LIST_DIR}/debian-cross.cmake)
