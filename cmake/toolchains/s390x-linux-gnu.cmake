# Cross build for IBM Z (Debian 12's gcc-s390x-linux-gnu), run under
# qemu-s390x: a big-endian host, for the model files and the CRC.
# tests/scripts/cross.sh uses it:
#   cmake -S . -B build/cross-s390x \
#     -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/s390x-linux-gnu.cmake
set(CMAKE_SYSTEM_PROCESSOR s390x)
set(LSTM_CROSS_TRIPLET s390x-linux-gnu)
set(LSTM_CROSS_QEMU qemu-s390x)
include(${CMAKE_CURRENT_LIST_DIR}/debian-cross.cmake)
