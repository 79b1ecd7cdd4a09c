# sousuo — build, test and run.  `make run` and `make test` are the two
# commands the README promises; everything else hangs off them.
#
# Layout: every .c under indexer/ search/ protocol/ bench/ (except *_main.c)
# goes into one static library per build flavour; each *_main.c is a program
# in bin/; each tests/test_*.c is a cmocka binary linked against the library.
# (bench/'s helpers, the latency histogram and the load generator, are in the
# library so that their tests and both benchmarks link them like the rest; a
# program takes from the archive only the objects it uses.)

CC      ?= cc
SHARED  ?= ../shared
CORPUS  ?= $(SHARED)/corpus
INDEX   ?= laws.idx

PKGS    := libzstd libxxhash libutf8proc libcjson
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
EVENT_LIBS = $(shell pkg-config --libs libevent libevent_pthreads 2>/dev/null)
CLI_LIBS   = $(shell pkg-config --libs libedit 2>/dev/null)

WARN    := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
OPT     ?= -O3 -g
SAN     ?=
# Hardening of the release build: fortified libc calls, stack protector,
# position-independent executables, read-only relocations bound at start.
# The sanitizer build goes without (ASan brings its own checks).
HARDEN    ?= -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE
HARDEN_LD ?= -pie -Wl,-z,relro,-z,now
CFLAGS  := $(OPT) $(SAN) $(HARDEN) -std=c11 -D_GNU_SOURCE $(WARN) -I. $(PKG_CFLAGS)
LDFLAGS := $(SAN) $(HARDEN_LD)
LDLIBS  := $(PKG_LIBS) -lpthread -lm

LIB_SRC  := $(filter-out %_main.c,$(wildcard indexer/*.c search/*.c protocol/*.c bench/*.c))
TEST_SRC := $(wildcard tests/test_*.c)
# Build flavours: plain in build/ with programs in bin/; sanitized in
# build-asan/ with its programs in build-asan/bin/.
B ?= build
BIN ?= bin
PROGS    := $(BIN)/sousuo-index $(BIN)/sousuo-search $(BIN)/sousuo-hotpath $(BIN)/sousuo-benchmark
# The daemon and the CLI join the build once their sources exist.
DAEMON_SRC := $(filter-out %_main.c,$(wildcard daemon/*.c))
ifneq ($(wildcard daemon/server_main.c),)
PROGS    += $(BIN)/sousuo-server
endif
ifneq ($(wildcard protocol/cli_main.c),)
PROGS    += $(BIN)/sousuo-cli
endif
LIB_OBJ  := $(LIB_SRC:%.c=$(B)/%.o)
TESTS    := $(TEST_SRC:tests/%.c=$(B)/tests/%)

.PHONY: all deps test test-bins test-asan test-valgrind run corpus bench bench-compare clean
all: deps
	@$(MAKE) --no-print-directory $(PROGS)

deps:
	@sh scripts/deps.sh

$(B)/%.o: %.c $(wildcard */*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(B)/libsousuo.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BIN)/sousuo-index: $(B)/indexer/index_main.o $(B)/libsousuo.a
	@mkdir -p $(BIN)
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS) $(LDLIBS)

$(BIN)/sousuo-search: $(B)/search/search_main.o $(B)/libsousuo.a
	@mkdir -p $(BIN)
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS) $(LDLIBS)

$(BIN)/sousuo-server: $(B)/daemon/server_main.o $(DAEMON_SRC:%.c=$(B)/%.o) $(B)/libsousuo.a
	@mkdir -p $(BIN)
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS) $(LDLIBS) $(EVENT_LIBS)

$(BIN)/sousuo-cli: $(B)/protocol/cli_main.o $(B)/libsousuo.a
	@mkdir -p $(BIN)
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS) $(LDLIBS) $(CLI_LIBS)

$(BIN)/sousuo-hotpath: $(B)/bench/hotpath_main.o $(B)/libsousuo.a
	@mkdir -p $(BIN)
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS) $(LDLIBS)

$(BIN)/sousuo-benchmark: $(B)/bench/benchmark_main.o $(B)/libsousuo.a
	@mkdir -p $(BIN)
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS) $(LDLIBS)

$(B)/tests/%: tests/%.c $(wildcard tests/*.h) $(B)/libsousuo.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< $(B)/libsousuo.a -o $@ $(LDFLAGS) $(LDLIBS) -lcmocka

test-bins: $(TESTS) $(PROGS)

# The test runner prints one summary line last: "N passed, N failed".
test: deps
	@$(MAKE) --no-print-directory test-bins
	@SHARED=$(SHARED) BIN=$(BIN) sh tests/run-tests.sh $(TESTS)

test-asan: deps
	@$(MAKE) --no-print-directory B=build-asan BIN=build-asan/bin OPT="-O1 -g -fno-omit-frame-pointer" \
		SAN="-fsanitize=address,undefined -fno-sanitize-recover=all" HARDEN= HARDEN_LD= test


# The daemon under valgrind, end to end (scripts/valgrind-server.sh).
test-valgrind: all
	@SHARED=$(SHARED) sh scripts/valgrind-server.sh

corpus:
	@sh corpus/fetch.sh $(SHARED)

run: all
	@sh scripts/run.sh

# The benchmark report, bench/results/REPORT.md and its plots: index build,
# the hot path in-process, hit counts, the daemon over the wire.  QUICK=1
# only checks that every step runs (CI).
QUICK ?=
bench: all
	@SHARED=$(SHARED) sh scripts/bench.sh $(if $(QUICK),--quick)

# The same run with Lucene, Sphinx and SQLite FTS5 beside sousuo (each peer
# is installed from Debian by its bench/peers/NAME/run.sh).
bench-compare: all
	@SHARED=$(SHARED) sh scripts/bench-compare.sh $(if $(QUICK),--quick)

clean:
	rm -rf build build-asan bin $(INDEX)

# ==== fuzz ====================================================================
# libFuzzer targets (tests/fuzz/README.md): `make fuzz` builds each with clang
# and runs it for FUZZ_SECONDS on a scratch copy of its seed corpus and
# regression inputs (the committed corpus never grows by itself); a crash,
# hang, leak or broken invariant fails the target, and its input is left in
# build-fuzz/.  The library is compiled again in build-fuzz/ with clang and
# the same sanitizers, instrumented for coverage.  The regression inputs
# also run under `make test` (tests/test_fuzz_regress.c).
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := request query text index reply
FB           := build-fuzz
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS  := -g -O1 -fno-omit-frame-pointer -std=c11 -D_GNU_SOURCE $(WARN) -I. $(PKG_CFLAGS)
FUZZ_BINS    := $(FUZZ_TARGETS:%=$(FB)/fuzz_%)

.PHONY: fuzz fuzz-bins fuzz-clean
$(FB)/%.o: %.c $(wildcard */*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -c $< -o $@

$(FB)/libsousuo.a: $(LIB_SRC:%.c=$(FB)/%.o)
	@rm -f $@
	ar rcs $@ $^

$(FB)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_util.h tests/text_ref.h $(FB)/libsousuo.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer $< $(FB)/libsousuo.a -o $@ \
		$(PKG_LIBS) -lpthread -lm

fuzz-bins: $(FUZZ_BINS)

fuzz: deps
	@command -v $(FUZZ_CC) >/dev/null || { echo "make fuzz needs $(FUZZ_CC) with libFuzzer" \
		"(Debian: apt-get install clang libclang-rt-dev)"; exit 1; }
	@$(MAKE) --no-print-directory fuzz-bins
	@sh tests/fuzz/run.sh $(FB) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-clean:
	rm -rf $(FB)

# The regression test includes the targets' sources: rebuild it when they change.
$(B)/tests/test_fuzz_regress: $(wildcard tests/fuzz/*.c tests/fuzz/*.h)
