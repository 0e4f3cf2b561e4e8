# The machine that runs the build: Debian 12 x86_64 with its gcc 12.
[settings]
os=Linux
arch=x86_64
compiler=gcc
compiler.version=12
compiler.libcxx=libstdc++11
build_type=Release
