# Fuzzing (included by the top Makefile). One tests/fuzz/fuzz_NAME.c = one
# libFuzzer harness, $(O)/fuzz/fuzz_NAME, linked with the library sources in
# fuzz_NAME_SRCS (all of LIB_SRCS if unset), built with coverage, ASan and
# UBSan; its seeds live in tests/fuzz/corpus/NAME/. Naming its sources keeps
# a harness building while unrelated files are half-written.
#   make fuzz                  build every harness
#   make fuzz-run              run each for FUZZ_SECONDS (default 30)
#   make fuzz-corpus           regenerate the seed corpora (gen_corpus.c)
# fuzz-run works on a scratch corpus in $(O)/fuzz/corpus/NAME, so the seeds
# in git stay small; crashes land in $(O)/fuzz/ as crash-*, and reproduce
# with `$(O)/fuzz/fuzz_NAME CRASH_FILE`. A harness's own libFuzzer options
# (e.g. -max_len) go in tests/fuzz/fuzz_NAME.args; FUZZ_ARGS adds to all.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 30
FUZZ_ARGS    ?=
FUZZ_O       := $(O)/fuzz
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all \
		-fno-omit-frame-pointer
FUZZ_CFLAGS  := -O1 -g $(CSTD) $(WARN) -D_GNU_SOURCE -I. $(FUZZ_SAN)
FUZZ_SRCS    := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_NAMES   := $(FUZZ_SRCS:tests/fuzz/fuzz_%.c=%)
FUZZ_BINS    := $(FUZZ_NAMES:%=$(FUZZ_O)/fuzz_%)
FUZZ_OBJS    := $(LIB_SRCS:%.c=$(FUZZ_O)/obj/%.o)
FUZZ_LIBS    := $(LDLIBS)

fuzz_loader_SRCS := $(wildcard vmm/loader*.c) vmm/mem.c
fuzz_snapshot_SRCS := vmm/snapshot_codec.c
fuzz_wire_SRCS := fabric/wire.c fabric/handshake.c
fuzz_dsm_SRCS := vmm/dsm.c vmm/dsm_wire.c vmm/cluster_wire.c
fuzz_jump_SRCS := vmm/vcpu_wire.c vmm/cluster_time.c vmm/trace.c balancer/locality.c
# attach.c is left out: it needs the whole VM.
fuzz_virtq_SRCS := $(filter-out vmm/virtio/attach.c,$(wildcard vmm/virtio/*.c)) vmm/mem.c

.PHONY: fuzz fuzz-run fuzz-corpus
fuzz: $(FUZZ_BINS)

$(FUZZ_O)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

define fuzz_harness
$(FUZZ_O)/fuzz_$(1): tests/fuzz/fuzz_$(1).c \
		$(patsubst %.c,$(FUZZ_O)/obj/%.o,$(or $(fuzz_$(1)_SRCS),$(LIB_SRCS)))
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $$^ -o $$@ $(FUZZ_LIBS)
endef
$(foreach n,$(FUZZ_NAMES),$(eval $(call fuzz_harness,$(n))))

fuzz-run: $(FUZZ_BINS)
	@set -e; for f in $(FUZZ_BINS); do \
		n=$${f##*/fuzz_}; seeds=tests/fuzz/corpus/$$n; \
		mkdir -p $(FUZZ_O)/corpus/$$n; \
		[ -d $$seeds ] || seeds=; \
		args=$$(cat tests/fuzz/fuzz_$$n.args 2>/dev/null || true); \
		echo "fuzz-run: $$n for $(FUZZ_SECONDS) s"; \
		$$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
			-artifact_prefix=$(FUZZ_O)/ $$args $(FUZZ_ARGS) \
			$(FUZZ_O)/corpus/$$n $$seeds; \
	done

$(FUZZ_O)/gen_corpus: tests/fuzz/gen_corpus.c tests/fuzz/kimg.h tests/fuzz/virtq_ops.h
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) -O1 -g -D_GNU_SOURCE -I. $< -o $@ $(FUZZ_LIBS)

fuzz-corpus: $(FUZZ_O)/gen_corpus
	$(FUZZ_O)/gen_corpus tests/fuzz/corpus

-include $(FUZZ_OBJS:.o=.d)
