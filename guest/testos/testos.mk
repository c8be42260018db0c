# Test OS: guest/testos/** -> $(O)/guest/testos.elf. Included by the
# top-level Makefile. The kernel (kern/, ring 0) and the ring-3 side
# (user/, tests/) are each partially linked into one object; lib/ is built
# into both, and the kernel's copy is made local so the two do not clash.
TESTOS_DIR := guest/testos
TESTOS_O   := $(O)/guest/testos
TESTOS_CC  ?= gcc
TESTOS_LD  ?= ld
TESTOS_OBJCOPY ?= objcopy
TESTOS_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -Wshadow \
	-ffreestanding -fno-pic -fno-pie -mno-red-zone -mno-sse -mno-mmx \
	-mgeneral-regs-only -nostdlib -fno-stack-protector -fno-builtin \
	-fcf-protection=none -fno-asynchronous-unwind-tables \
	-fno-unwind-tables -mcmodel=small -march=x86-64 -mtune=generic \
	-I$(TESTOS_DIR)/include -MMD -MP

TESTOS_KSRCS := $(wildcard $(TESTOS_DIR)/kern/*.c $(TESTOS_DIR)/kern/*.S \
	$(TESTOS_DIR)/lib/*.c)
TESTOS_USRCS := $(wildcard $(TESTOS_DIR)/user/*.c $(TESTOS_DIR)/user/*.S \
	$(TESTOS_DIR)/tests/*.c $(TESTOS_DIR)/lib/*.c)
TESTOS_KOBJS := $(patsubst $(TESTOS_DIR)/%,$(TESTOS_O)/k/%.o,$(TESTOS_KSRCS))
TESTOS_UOBJS := $(patsubst $(TESTOS_DIR)/%,$(TESTOS_O)/u/%.o,$(TESTOS_USRCS))

# Kernel code: hidden visibility so --localize-hidden keeps its lib copy
# private; ring-3 code may use the full x86-64 baseline.
$(TESTOS_O)/k/%.o: $(TESTOS_DIR)/% $(TESTOS_DIR)/testos.mk
	@mkdir -p $(dir $@)
	$(TESTOS_CC) $(TESTOS_CFLAGS) -fvisibility=hidden -DTESTOS_KERNEL -c $< -o $@

$(TESTOS_O)/u/%.o: $(TESTOS_DIR)/% $(TESTOS_DIR)/testos.mk
	@mkdir -p $(dir $@)
	$(TESTOS_CC) $(TESTOS_CFLAGS) -DTESTOS_USER -c $< -o $@

$(TESTOS_O)/kernel.o: $(TESTOS_KOBJS)
	$(TESTOS_LD) -r -o $@ $^
	$(TESTOS_OBJCOPY) --localize-hidden $@

$(TESTOS_O)/user.o: $(TESTOS_UOBJS)
	$(TESTOS_LD) -r -o $@ $^

$(O)/guest/testos.elf: $(TESTOS_O)/kernel.o $(TESTOS_O)/user.o \
		$(TESTOS_DIR)/testos.ld
	$(TESTOS_LD) -static -nostdlib -z max-page-size=4096 -z noexecstack \
		--build-id=none --no-warn-rwx-segments -T $(TESTOS_DIR)/testos.ld \
		-o $@ $(TESTOS_O)/kernel.o $(TESTOS_O)/user.o

-include $(TESTOS_KOBJS:.o=.d) $(TESTOS_UOBJS:.o=.d)
