#!/bin/sh
# Regenerates the small checked-in test binaries from hello.c.
# Needs gcc and the Debian cross compilers named below (see
# debian-packages.txt). The tests build everything else at test time.
set -eu
cd "$(dirname "$0")"
FLAGS="-g -O1 -fno-asynchronous-unwind-tables -Wl,--build-id=sha1"
gcc                    $FLAGS          -o hello-x86_64  hello.c  # PIE, little-endian ELF64
gcc                    -g -O1          -c -o hello-x86_64.o hello.c  # ET_REL with .rela.debug_*
s390x-linux-gnu-gcc    $FLAGS          -o hello-s390x   hello.c  # big-endian ELF64
arm-linux-gnueabihf-gcc $FLAGS         -o hello-armhf   hello.c  # little-endian ELF32
powerpc-linux-gnu-gcc  $FLAGS -Wl,-z,max-page-size=0x1000 -o hello-ppc hello.c  # big-endian ELF32
gcc $FLAGS -gz=zlib -o hello-x86_64-gz hello.c                    # SHF_COMPRESSED debug sections
strip --strip-all -o hello-x86_64-stripped hello-x86_64  # nothing left to strip (but .comment)
