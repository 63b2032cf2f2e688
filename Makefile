# imgfs — plain GNU make. `make` builds ./imgfs, `make test` runs every test, `make asan` builds
# ./imgfs-asan (ASan + UBSan), `make deps` installs the Debian packages the project needs.

CC      ?= cc
PKGS    := fuse3 libarchive lmdb jansson libseccomp libcrypto zlib libcurl
CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra -Werror -Wshadow -Wmissing-prototypes -Wformat=2 -Wno-format-nonliteral \
           -Wstrict-prototypes -Wvla
CPPFLAGS += -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# libcurl is loaded on first use (fs/curl.c), not linked: its 24 libraries cost every start.
# libarchive and libcrypto are linked statically where their .a exist (Debian's -dev packages have
# them): the dynamic loader's symbol lookups for them were most of what every imgfs process did
# before its first instruction (docs/runner.md, "Where the start time goes"). The shared libarchive
# drags libxml2, ICU and libstdc++ in for xar support imgfs never uses (fs/archive_static.c); its
# own compression and ACL libraries stay shared, liblz4 and libacl by their sonames because
# Debian's libarchive-dev does not pull their -dev packages in. libcrypto.so.3 is bound at load (-z now) with 4,200 symbol relocations,
# for SHA-256 and base64; TLS is libcurl's business and uses the shared libcrypto it loads itself,
# which keeps getting the distribution's security updates.
LINKED   := $(filter-out libcurl,$(PKGS))
STATIC   :=
# The static archive needs the link-time names of its compression libraries (nettle-dev,
# liblzma-dev, libbz2-dev, libzstd-dev, zlib1g-dev: in DEPS); without one of them, link it shared.
ARCHIVE_DIR := $(shell pkg-config --variable=libdir libarchive 2>/dev/null)
ARCHIVE_A := $(wildcard $(ARCHIVE_DIR)/libarchive.a)
ARCHIVE_NEEDS := $(foreach l,nettle lzma zstd bz2 z,$(ARCHIVE_DIR)/lib$(l).so)
ifneq ($(words $(wildcard $(ARCHIVE_NEEDS))),$(words $(ARCHIVE_NEEDS)))
ARCHIVE_A :=
endif
ifneq ($(ARCHIVE_A),)
LINKED   := $(filter-out libarchive,$(LINKED))
STATIC   += -larchive
SHARED_DEPS := -lnettle -llzma -lzstd -l:liblz4.so.1 -l:libacl.so.1 -lbz2 -lz
CPPFLAGS += -DIMGFS_STATIC_LIBARCHIVE
endif
CRYPTO_A := $(wildcard $(shell pkg-config --variable=libdir libcrypto 2>/dev/null)/libcrypto.a)
ifneq ($(CRYPTO_A),)
LINKED   := $(filter-out libcrypto,$(LINKED))
STATIC   += -lcrypto
CPPFLAGS += -DIMGFS_STATIC_LIBCRYPTO
endif
# The rest of what every process loaded — fuse3, LMDB, jansson, libseccomp, zlib and libarchive's
# compression libraries — goes the same way where its archive exists: with them shared, ld.so's
# symbol lookups over 13 objects were most of an `imgfs --version` (1.7-2.6 -> 0.9-1.2 ms of CPU,
# 1,218 -> 163 symbol relocations: docs/runner.md). liblz4 and libacl stay shared (no archive
# without their -dev packages). As for libarchive and libcrypto, a security fix to one of them
# reaches imgfs when it is rebuilt.
LIBDIR     := $(shell pkg-config --variable=libdir zlib 2>/dev/null)
STATIC_TOO := $(foreach l,fuse3 lmdb jansson seccomp nettle lzma zstd bz2 z,\
                $(if $(wildcard $(LIBDIR)/lib$(l).a),-l$(l)))
STATIC     += $(STATIC_TOO)
ifneq ($(strip $(STATIC)),)
STATIC_LIBS := -Wl,-Bstatic $(STATIC) -Wl,-Bdynamic
endif
LDLIBS  += -Wl,--as-needed $(filter-out $(STATIC_TOO),$(shell pkg-config --libs $(LINKED) 2>/dev/null)) \
           $(STATIC_LIBS) $(filter-out $(STATIC_TOO),$(SHARED_DEPS)) -ldl -lpthread
ALL_CFLAGS = -std=gnu11 $(WARN) $(CFLAGS) $(CPPFLAGS) -MMD -MP
# The static libcrypto, libarchive and libseccomp bring ~19,000 relative relocations (tables of
# pointers) to the position-independent executable: as RELA entries a 456 KiB table that ld.so
# reads at every exec of imgfs. Packed (DT_RELR, glibc >= 2.36, binutils >= 2.38) it is 6 KiB.
LDFLAGS += -Wl,-z,pack-relative-relocs

# Debian packages: libraries, and the real tools the tests and benchmarks check against.
DEPS := build-essential pkg-config clang-format clang \
        libfuse3-dev fuse3 libarchive-dev libssl-dev liblmdb-dev lmdb-utils libjansson-dev \
        libseccomp-dev libcurl4-openssl-dev zlib1g-dev libzstd-dev nettle-dev liblzma-dev libbz2-dev \
        skopeo umoci crun runc squashfuse squashfs-tools fuse-overlayfs slirp4netns golang-go \
        debootstrap busybox-static hyperfine docker-registry attr iproute2 curl jq xz-utils \
        zstd bzip2 file procps psmisc util-linux \
        libcap2-bin openssl python3 tar findutils coreutils gzip \
        docker.io containerd stargz-snapshotter buildah apache2-utils ca-certificates git

LIB_SRCS  := $(wildcard fs/*.c runner/*.c builder/*.c)
TOOL_SRCS := $(wildcard tools/*.c)
SRCS      := $(LIB_SRCS) $(TOOL_SRCS)

OBJS      := $(SRCS:%.c=build/release/%.o)
ASAN_OBJS := $(SRCS:%.c=build/asan/%.o)
LIB_OBJS  := $(LIB_SRCS:%.c=build/release/%.o)

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=build/unit/%)

ASAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

# libFuzzer targets for every parser of untrusted input (tests/fuzz/fuzz_*.c), built with clang.
FUZZ_SRCS  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS  := $(FUZZ_SRCS:tests/fuzz/%.c=build/fuzz/%)
# builder/: the Dockerfile language only (the executor needs runner/ and is no parser)
FUZZ_LIB   := $(filter-out fs/mount.c,$(wildcard fs/*.c)) builder/dockerfile.c builder/shell.c \
              builder/dockerignore.c
FUZZ_FLAGS := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined
# the library is compiled once for every target (instrumented, without libFuzzer's main)
FUZZ_OBJS  := $(FUZZ_LIB:%.c=build/fuzz/obj/%.o)

.PHONY: all asan test test-vm deps-vm unit integration deps clean format check-format fuzz fuzz-long man install
all: imgfs build/imgfs.1

# The man page is made from the --help texts (tools/gen-man.sh), so the two cannot disagree.
build/imgfs.1: imgfs tools/gen-man.sh
	@mkdir -p $(dir $@)
	tools/gen-man.sh ./imgfs > $@.tmp && mv $@.tmp $@
man: build/imgfs.1

PREFIX ?= /usr/local
install: imgfs build/imgfs.1
	install -D -m 0755 imgfs $(DESTDIR)$(PREFIX)/bin/imgfs
	install -D -m 0644 build/imgfs.1 $(DESTDIR)$(PREFIX)/share/man/man1/imgfs.1
	install -D -m 0644 tools/imgfs-completion.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/imgfs

imgfs: $(OBJS)
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

imgfs-asan: $(ASAN_OBJS)
	$(CC) $(ASAN_FLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

asan: imgfs-asan

build/release/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

build/asan/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 $(WARN) $(ASAN_FLAGS) $(CPPFLAGS) -MMD -MP -c -o $@ $<

build/unit/%: tests/unit/%.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB_OBJS) $(LDFLAGS) $(LDLIBS)

unit: $(UNIT_BINS)
	@tests/run-unit.sh $(UNIT_BINS)

# Every test: unit tests, then the integration suites against ./imgfs and ./imgfs-asan.
test: imgfs imgfs-asan $(UNIT_BINS)
	tests/run.sh

# cgroup v2 with real controllers, in a qemu VM booting the host's kernel (root; not in `test`:
# needs qemu-system-x86 and a /boot/vmlinuz with its modules, skips without; tests/vm/cgroup-v2.sh).
test-vm: imgfs
	tests/vm/cgroup-v2.sh

# What test-vm needs beyond `make deps` (a kernel package for /boot/vmlinuz, qemu, initramfs tools).
DEPS_VM := qemu-system-x86 linux-image-amd64 cpio kmod
deps-vm: deps
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(DEPS_VM)

fuzz: $(FUZZ_BINS)

# Each fuzz target for 10 million executions (hours; RUNS=, MAX_TIME=, TARGETS=: bench/fuzz-long.sh).
fuzz-long:
	bench/fuzz-long.sh

build/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	clang -std=gnu11 -Wall -Wextra $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link $(CPPFLAGS) -MMD -MP -c -o $@ $<

build/fuzz/%: tests/fuzz/%.c $(FUZZ_OBJS) $(wildcard tests/fuzz/*.h)
	@mkdir -p $(dir $@)
	clang -std=gnu11 -Wall -Wextra $(FUZZ_FLAGS) -fsanitize=fuzzer $(CPPFLAGS) -o $@ $< $(FUZZ_OBJS) $(LDFLAGS) $(LDLIBS)

deps:
	@if [ "$$(id -u)" != 0 ]; then \
	  echo "make deps needs root; install these Debian packages:"; echo "  $(DEPS)"; exit 1; fi
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(DEPS)

# Formats only the lines this branch changed against main (git clang-format): the tree is not
# formatted as a whole, and reformatting code nobody touched makes everyone's merges conflict.
format:
	git clang-format --force --binary clang-format --extensions c,h $$(git merge-base HEAD main) -- . || true

check-format:
	clang-format --dry-run --Werror $(SRCS) $(wildcard fs/*.h runner/*.h builder/*.h tools/*.h)

clean:
	rm -rf build imgfs imgfs-asan

-include $(OBJS:.o=.d) $(ASAN_OBJS:.o=.d) $(FUZZ_OBJS:.o=.d)
