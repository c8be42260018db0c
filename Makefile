# ServerlessOS build. `make` builds build/slos and build/guest/testos.elf;
# `make asan` the same VMM under ASan+UBSan in build-asan/; `make test` runs
# every test (plain and sanitized); `make demo` boots Linux over 2 hosts and
# runs its apps (scripts/demo.sh).
CC      ?= cc
O       ?= build
CSTD    := -std=gnu11
WARN    := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
OPT     ?= -O2 -g
EXTRA   ?=
CFLAGS  := $(OPT) $(EXTRA) $(CSTD) $(WARN) -D_GNU_SOURCE -I. -MMD -MP
LDFLAGS += $(EXTRA)
LDLIBS  += -lpthread -llzma -llz4 -lzstd -lz -lsodium -luring -libverbs
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

LIB_SRCS := $(filter-out vmm/main.c,$(wildcard vmm/*.c vmm/virtio/*.c fabric/*.c balancer/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(O)/%.o)
MAIN_OBJ := $(O)/vmm/main.o
UNIT_SRCS := $(wildcard tests/unit/*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(O)/tests/unit/%)
INTEG_SRCS := $(filter-out tests/integration/harness.c,$(wildcard tests/integration/*.c))
INTEG_BINS := $(INTEG_SRCS:tests/integration/%.c=$(O)/tests/integration/%)
# bench/blk/guest.c runs inside the Linux guest: static, no libslos.
BLK_GUEST  := $(O)/bench/blk/guest
BENCH_SRCS := $(filter-out bench/blk/guest.c,$(wildcard bench/*/*.c))
BENCH_BINS := $(patsubst bench/%.c,$(O)/bench/%,$(BENCH_SRCS))

.PHONY: all asan tests test demo fuzz clean deps linux-guest format
all: $(O)/slos $(O)/guest/testos.elf $(BENCH_BINS) $(BLK_GUEST)

$(O)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(O)/libslos.a: $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(O)/slos: $(MAIN_OBJ) $(O)/libslos.a
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS) $(LDLIBS)

$(O)/tests/unit/%: tests/unit/%.c $(O)/libslos.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< $(O)/libslos.a -o $@ $(LDFLAGS) -lcriterion $(LDLIBS)

# kvm_kind.o: tests ask the VMM's own code which KVM is here.
$(O)/tests/integration/%: tests/integration/%.c tests/integration/harness.c $(O)/vmm/kvm_kind.o
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS) -lcriterion

$(O)/bench/%: bench/%.c $(O)/libslos.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< $(O)/libslos.a -o $@ $(LDFLAGS) $(LDLIBS)

# As scripts/build-linux-guest.sh builds guest/linux/apps/uspace.c.
$(BLK_GUEST): bench/blk/guest.c
	@mkdir -p $(dir $@)
	$(CC) -static -O2 $(CSTD) $(WARN) $< -o $@

-include guest/testos/testos.mk
-include tests/fuzz/fuzz.mk

asan:
	$(MAKE) O=build-asan CC=clang OPT="-O1 -g" EXTRA="$(SAN)" \
		build-asan/slos $(patsubst $(O)/%,build-asan/%,$(UNIT_BINS) $(INTEG_BINS))

deps:
	scripts/install-deps.sh

linux-guest: all
	scripts/build-linux-guest.sh $(O)/linux

tests: all $(UNIT_BINS) $(INTEG_BINS)

# Their first line says which KVM they use (scripts/kvm.sh): /dev/kvm,
# or the lab where there is none.
test:
	@scripts/kvm.sh banner "make test"
	scripts/install-deps.sh
	$(MAKE) tests
	$(MAKE) asan
	tests/run-all.sh

demo:
	@scripts/demo.sh banner
	scripts/install-deps.sh
	$(MAKE) all
	scripts/demo.sh

format:
	clang-format -i $(shell find vmm fabric balancer tests bench guest/testos -name '*.[ch]')

clean:
	rm -rf build build-asan

-include $(LIB_OBJS:.o=.d) $(MAIN_OBJ:.o=.d)
