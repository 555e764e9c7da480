# The crafted-rule binary of test/vm/checkentry.test.ts (needs libip4tc-dev and libip6tc2).
#   make -f test/c/craft.mk [OUT=DIR]     (from any directory)
HERE := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
ROOT := $(abspath $(HERE)/../..)
OUT ?= $(ROOT)/.cache/ctest
CC ?= cc
CRAFT_CFLAGS := -std=gnu11 -O1 -g -Wall -Wextra -Werror -I$(ROOT)/kernel/include/uapi

.PHONY: craft
craft: $(OUT)/craft

$(OUT)/craft: $(HERE)/craft.c $(ROOT)/kernel/include/uapi/linux/netfilter/xt_traffic.h
	@mkdir -p $(OUT)
	$(CC) $(CRAFT_CFLAGS) -o $@ $(HERE)/craft.c -lip4tc -l:libip6tc.so.2
