# Target: Linux aarch64 (Debian 12 userland, glibc 2.36) — the product's device.
# Cross-compiled on x86_64 with Debian's gcc-aarch64-linux-gnu.
include(../build.profile)
include(../hardening.profile)

[settings]
arch=armv8

[conf]
tools.build:compiler_executables={"c": "aarch64-linux-gnu-gcc", "cpp": "aarch64-linux-gnu-g++"}

[runenv]
# aarch64 programs run on this machine under qemu-user; this is where it finds the target's glibc.
QEMU_LD_PREFIX=/usr/aarch64-linux-gnu
