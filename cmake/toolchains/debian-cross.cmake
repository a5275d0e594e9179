# Shared part of the Debian 12 cross toolchains (aarch64-linux-gnu.cmake,
# s390x-linux-gnu.cmake), which set LSTM_CROSS_TRIPLET and LSTM_CROSS_QEMU
# and include this file. tests/scripts/cross.sh installs what it uses:
#   - gcc-<triplet> and libc6-dev-<arch>-cross, the cross compiler and the
#     target's C library headers and start files;
#   - the target's OpenBLAS and CMocka from Debian's multiarch packages
#     (libopenblas-dev:<arch>, libcmocka-dev:<arch>), under /usr/lib/<triplet>,
#     found through the target's pkg-config directory;
#   - qemu-user, which runs the target's programs (CTest's tests) here.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_C_COMPILER ${LSTM_CROSS_TRIPLET}-gcc)

# No C++: check_language(CXX) then finds no compiler, and test_cxx is not
# built (the headers are the same on every host; the host's g++ would build
# an x86-64 test_cxx, and a cross g++ needs the target's libstdc++ too).
set(CMAKE_CXX_COMPILER NOTFOUND)

# The target's programs run under qemu-user. "-L /": the dynamic loader and
# the libraries are the target's multiarch packages at their usual places
# (/lib/ld-linux-aarch64.so.1, /lib/ld64.so.1, /usr/lib/<triplet>), loader
# and libc from one package; no other prefix is searched.
set(CMAKE_CROSSCOMPILING_EMULATOR ${LSTM_CROSS_QEMU} -L /)

# pkg-config (cmocka, openblas) reads the target's .pc files only.
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/${LSTM_CROSS_TRIPLET}/pkgconfig:/usr/share/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "")
