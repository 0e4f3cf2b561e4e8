# Target: Linux x86_64 (Debian 12 userland, glibc 2.36) — for local testing.
include(../build.profile)
include(../hardening.profile)

[conf]
tools.build:compiler_executables={"c": "gcc", "cpp": "g++"}
