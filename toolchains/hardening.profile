# Hardening flags shared by every target (included by toolchains/<arch>/host.profile).
# They are part of the package id, so changing them rebuilds.
[conf]
tools.build:cflags=["-fstack-protector-strong", "-fstack-clash-protection", "-D_FORTIFY_SOURCE=2", "-fPIC"]
tools.build:sharedlinkflags=["-Wl,-z,relro", "-Wl,-z,now", "-Wl,-z,noexecstack", "-Wl,--as-needed"]
tools.build:exelinkflags=["-Wl,-z,relro", "-Wl,-z,now", "-Wl,-z,noexecstack", "-pie"]
tools.info.package_id:confs=["tools.build:cflags", "tools.build:sharedlinkflags", "tools.build:exelinkflags", "tools.build:compiler_executables"]
