# abgate: one plain Makefile. `make` builds build/abgate; see `make help`.
PREFIX  ?= /usr/local
DESTDIR ?=
CC      ?= cc
PKGS    := libevent libevent_pthreads libssl libcrypto libcjson gsl yaml-0.1 liburing
WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith \
           -Wcast-qual -Wwrite-strings -Wformat=2 -Wundef -Wvla -Wno-unused-parameter
ifeq ($(CI),true)
WARN    += -Werror
endif
OPT     ?= -O2 -g
CFLAGS  += -std=gnu11 $(OPT) $(WARN) -D_GNU_SOURCE -Iinclude $(shell pkg-config --cflags $(PKGS))
LDLIBS  += $(shell pkg-config --libs $(PKGS)) -lpthread -lm
B       ?= build

LIB_SRC  := $(filter-out proxy/main.c,$(wildcard proxy/*.c)) $(wildcard stats/*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(B)/obj/%.o)
MAIN_OBJ := $(B)/obj/proxy/main.o
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)

.PHONY: all run test unit integration asan fuzz bench bench-report bench-router install clean deps help
all: $(B)/abgate

help:
	@echo "make            build build/abgate"
	@echo "make run        install missing packages, build, run the demo"
	@echo "make test       install test packages, build, run every test tier"
	@echo "make asan       build build/asan/abgate with address+undefined sanitizers"
	@echo "make install    install to \$$DESTDIR\$$PREFIX/bin (PREFIX=$(PREFIX))"

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(B)/libabgate.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(B)/abgate: $(MAIN_OBJ) $(B)/libabgate.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/tests/%: $(B)/obj/tests/unit/%.o $(B)/libabgate.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

deps:
	@bash scripts/deps.sh

run: deps
	@$(MAKE) --no-print-directory all
	@bash scripts/demo

unit: $(B)/abgate $(UNIT_BIN)
	@bash tests/run.sh unit $(B)

integration: $(B)/abgate
	@bash tests/run.sh integration $(B)

test:
	@bash scripts/deps.sh test
	@$(MAKE) --no-print-directory -j2 all $(UNIT_BIN)
	@$(MAKE) --no-print-directory -j2 asan
	@$(MAKE) --no-print-directory -j2 fuzz
	@bash tests/run.sh all $(B)

asan:
	@$(MAKE) --no-print-directory B=build/asan CC=clang \
		OPT="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
		LDFLAGS="-fsanitize=address,undefined" build/asan/abgate \
		$(UNIT_SRC:tests/unit/%.c=build/asan/tests/%)

bench: $(B)/abgate
	@bash scripts/deps.sh bench
	@/usr/bin/python3 scripts/bench $(BENCH_ARGS)

bench-report: $(B)/abgate
	@bash scripts/deps.sh bench
	@/usr/bin/python3 scripts/bench-report $(BENCH_ARGS)

# The request path's assignment cost per hash mode (tests/bench/bench_router.c).
bench-router: $(B)/bench_router
	@$(B)/bench_router $(BENCH_ARGS)

$(B)/bench_router: $(B)/obj/tests/bench/bench_router.o $(B)/libabgate.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

install: $(B)/abgate
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(B)/abgate $(DESTDIR)$(PREFIX)/bin/abgate

clean:
	rm -rf build

# libFuzzer drivers, one per parser (tests/fuzz/fuzz_*.c). `make fuzz` builds build/fuzz/<name>
# against the library compiled for fuzzing; `make fuzz-smoke` runs each one over a scratch copy
# of its seed corpus (tests/fuzz/corpus/<name>) for FUZZ_TIME seconds and fails on any crash.
FUZZ_DIR     := build/fuzz
FUZZ_CC      ?= clang
FUZZ_TIME    ?= 10
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS  := -std=gnu11 -g -O1 -fno-omit-frame-pointer $(filter-out -Werror,$(WARN)) \
                -D_GNU_SOURCE -Iinclude $(shell pkg-config --cflags $(PKGS))
FUZZ_SRC     := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN     := $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_DIR)/%)
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FUZZ_DIR)/obj/%.o)

.PHONY: fuzz-smoke
fuzz: $(FUZZ_BIN)

fuzz-smoke: fuzz
	@bash tests/fuzz/run.sh $(FUZZ_TIME) $(FUZZ_DIR)

$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(FUZZ_SAN) -MMD -MP -c $< -o $@

$(FUZZ_DIR)/libabgate.a: $(FUZZ_LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_DIR)/libabgate.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Itests/fuzz -fsanitize=fuzzer $(FUZZ_SAN) -MMD -MP -MF $@.d \
		-o $@ $< $(FUZZ_DIR)/libabgate.a $(LDLIBS)

-include $(shell find $(B) -name '*.d' 2>/dev/null)
