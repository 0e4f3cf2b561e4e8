# Hardening flags for every C object we build or ship: the one definition.
# Read by SCons (packaging/targets.py), by Conan (toolchains/hardening.profile renders it into
# the OpenSSL and liboqs builds) and by make (the delivery ships it as examples/hardening.mk for
# the OEM example's Makefile). Plain `NAME = value` lines only: all three parse it.
HARDEN_CFLAGS = -fstack-protector-strong -fstack-clash-protection -D_FORTIFY_SOURCE=2
HARDEN_CFLAGS_x86_64 = -fcf-protection=full
HARDEN_CFLAGS_aarch64 = -mbranch-protection=standard
HARDEN_LDFLAGS = -Wl,-z,relro -Wl,-z,now -Wl,-z,noexecstack
HARDEN_SHARED_LDFLAGS = -Wl,--as-needed
HARDEN_EXE_LDFLAGS = -pie
