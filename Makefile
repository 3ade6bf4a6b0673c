# lanyard build. `make` builds build/lanyard and build/liblanyard.a; `make test` runs every unit,
# integration and interop test; `make asan` runs the same suite under ASan+UBSan; `make fuzz`
# runs each libFuzzer target for a bounded time; `make demo` shows lanyard's main job.
# Missing Debian packages are installed by the `deps` step (apt-get, as root or through sudo).

BUILD   ?= build
CC      ?= gcc
SAN     ?= 0
FUZZ_SECONDS ?= 20

PKGS := wolfssl jansson libcbor sqlite3 libcurl libnghttp2 libprotobuf-c

WARN := -Wall -Wextra -Wpedantic -Werror -Wshadow -Wformat=2 -Wcast-align -Wwrite-strings -Wvla
BASE_CFLAGS := -std=c11 -D_POSIX_C_SOURCE=200809L $(WARN) -fPIE -g
ifeq ($(SAN),1)
BASE_CFLAGS += -O1 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
SAN_LDFLAGS := -fsanitize=address,undefined
else
BASE_CFLAGS += -O2 -D_FORTIFY_SOURCE=2 -fstack-protector-strong
SAN_LDFLAGS :=
endif

DEP_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null) -I$(BUILD)/gen
# libhttp-parser ships no pkg-config file.
DEP_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lhttp_parser -lpthread
CFLAGS  := $(BASE_CFLAGS) $(EXTRA_CFLAGS)
LDFLAGS := -pie -Wl,-z,relro,-z,now $(SAN_LDFLAGS)

LIB_SRCS := $(wildcard common/*.c svid/*.c trust-bundles/*.c federation/*.c) \
            $(filter-out broker/main.c,$(wildcard broker/*.c))
LIB_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRCS))
BIN_OBJS := $(BUILD)/obj/broker/main.o
UNIT_SRCS := $(wildcard tests/unit/*_test.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
BENCH_SRCS := $(wildcard bench/*.c)
BENCH_BINS := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRCS))
FUZZ_SRCS := $(wildcard tests/fuzz/*_fuzz.c)

.PHONY: all deps test unit asan valgrind fuzz fuzz-replay demo demo-federation bench clean lint
# Keep fuzz objects between runs (make would delete them as intermediates).
.SECONDARY:

all: $(BUILD)/.deps $(BUILD)/lanyard $(BUILD)/liblanyard.a

# ---- dependencies -------------------------------------------------------------------------
# Debian packages the build and the tests need. nodejs/npm come with the base machine (their
# Debian versions would replace it), so they are checked, not installed.
DEB_PKGS := gcc make pkg-config libwolfssl-dev libjansson-dev libcbor-dev libsqlite3-dev \
            libcurl4-openssl-dev libcmocka-dev openssl golang-go clang libclang-rt-14-dev \
            sqlite3 ca-certificates libnghttp2-dev protobuf-c-compiler libprotobuf-c-dev \
            libprotobuf-dev libhttp-parser-dev nginx cppcheck

deps: $(BUILD)/.deps

$(BUILD)/.deps: Makefile
	@mkdir -p $(BUILD)
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -q >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing >/dev/null \
	  || { echo "deps: apt-get install failed for:$$missing" >&2; exit 1; }; \
	fi
	@command -v node >/dev/null && command -v npm >/dev/null || \
	  { echo "deps: node and npm are required for the interop tests" >&2; exit 1; }
	@touch $@

# npm packages for the interop tests, pinned by tests/interop/package-lock.json.
tests/interop/node_modules/.stamp: tests/interop/package.json tests/interop/package-lock.json
	cd tests/interop && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# The MCP conformance suite needs Node >= 22: tests/interop/node22 pins it together with the
# npm package node@22, whose install script fetches a Node 22 binary from the npm registry.
tests/interop/node22/node_modules/.stamp: tests/interop/node22/package.json tests/interop/node22/package-lock.json
	cd tests/interop/node22 && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

test: tests/interop/node22/node_modules/.stamp

# ---- build --------------------------------------------------------------------------------
$(BUILD)/obj/%.o: %.c | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DEP_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/liblanyard.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/lanyard: $(BIN_OBJS) $(BUILD)/liblanyard.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(BIN_OBJS) $(BUILD)/liblanyard.a $(DEP_LIBS)

$(BUILD)/tests/%_test: tests/unit/%_test.c $(BUILD)/liblanyard.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DEP_CFLAGS) -Wno-pedantic $(LDFLAGS) -o $@ $< $(BUILD)/liblanyard.a \
	  $(DEP_LIBS) -lcmocka

$(BUILD)/bench/%: bench/%.c $(BUILD)/liblanyard.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DEP_CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/liblanyard.a $(DEP_LIBS)

-include $(LIB_OBJS:.o=.d) $(BIN_OBJS:.o=.d)

# ---- gRPC codegen and test helpers --------------------------------------------------------
# protoc-c turns the Workload API proto (and the struct.proto it imports, which libprotobuf-c
# does not ship as C) into $(GEN)/*.pb-c.{c,h}. Generated code is not ours: it is compiled with
# warnings off (-w) and goes into liblanyard.a; our code finds it through -I$(BUILD)/gen.
GEN      := $(BUILD)/gen
GEN_SRCS := $(GEN)/workloadapi.pb-c.c $(GEN)/google/protobuf/struct.pb-c.c
GEN_HDRS := $(GEN_SRCS:.c=.h)
GEN_OBJS := $(patsubst $(GEN)/%.c,$(BUILD)/obj/gen/%.o,$(GEN_SRCS))

$(GEN)/workloadapi.pb-c.c $(GEN)/workloadapi.pb-c.h &: broker/proto/workloadapi.proto \
  | $(BUILD)/.deps
	@mkdir -p $(GEN)
	protoc-c --c_out=$(GEN) -Ibroker/proto -I/usr/include $<

# struct.proto comes with libprotobuf-dev, which the deps step installs: it is an order-only
# prerequisite so that a fresh machine does not fail before the packages are there.
$(GEN)/google/protobuf/struct.pb-c.c $(GEN)/google/protobuf/struct.pb-c.h &: | $(BUILD)/.deps
	@mkdir -p $(GEN)
	protoc-c --c_out=$(GEN) -I/usr/include google/protobuf/struct.proto

$(BUILD)/obj/gen/%.o: $(GEN)/%.c $(GEN_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -w $(DEP_CFLAGS) -c $< -o $@

# Our sources may include the generated headers, which must exist before the first compile.
$(LIB_OBJS) $(BIN_OBJS): | $(GEN_HDRS)
$(BUILD)/liblanyard.a: $(GEN_OBJS)

# Test-only programs (never installed), e.g. the Workload API stub server of the interop tests.
HELPER_SRCS := $(wildcard tests/helpers/*.c)
HELPER_BINS := $(patsubst tests/helpers/%.c,$(BUILD)/tests/helpers/%,$(HELPER_SRCS))

$(BUILD)/tests/helpers/%: tests/helpers/%.c $(BUILD)/liblanyard.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DEP_CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/liblanyard.a $(DEP_LIBS)

test: $(HELPER_BINS)

# ---- tests --------------------------------------------------------------------------------
unit: all $(UNIT_BINS)
	@BUILD=$(BUILD) tests/run.sh unit

test: all $(UNIT_BINS) tests/interop/node_modules/.stamp
	@BUILD=$(BUILD) tests/run.sh all

asan:
	$(MAKE) BUILD=build-asan SAN=1 test

valgrind: all $(UNIT_BINS)
	@BUILD=$(BUILD) VALGRIND=1 tests/run.sh unit

# ---- fuzzing (clang + libFuzzer) ----------------------------------------------------------
FUZZ_BUILD := build-fuzz
FUZZ_CFLAGS := -std=c11 -D_POSIX_C_SOURCE=200809L -g -O1 -fsanitize=fuzzer-no-link,address,undefined
FUZZ_LIB_OBJS := $(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,$(LIB_SRCS)) \
                 $(patsubst $(GEN)/%.c,$(FUZZ_BUILD)/obj/gen/%.o,$(GEN_SRCS))
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(FUZZ_BUILD)/%,$(FUZZ_SRCS))

$(FUZZ_BUILD)/obj/%.o: %.c | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) $(DEP_CFLAGS) -c $< -o $@

$(FUZZ_BUILD)/obj/gen/%.o: $(GEN)/%.c $(GEN_HDRS)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -w $(DEP_CFLAGS) -c $< -o $@

$(FUZZ_LIB_OBJS): | $(GEN_HDRS)

$(FUZZ_BUILD)/%_fuzz: tests/fuzz/%_fuzz.c $(FUZZ_LIB_OBJS)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer $(DEP_CFLAGS) -o $@ $< $(FUZZ_LIB_OBJS) $(DEP_LIBS)

fuzz: $(BUILD)/.deps $(FUZZ_BINS)
	@set -e; for f in $(FUZZ_BINS); do \
	  name=$$(basename $$f _fuzz); corpus=tests/fuzz/corpus/$$name; \
	  work=$(FUZZ_BUILD)/corpus/$$name; mkdir -p $$work; \
	  echo "fuzz: $$name for $(FUZZ_SECONDS)s (seeds: $$corpus)"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -max_len=8192 -timeout=10 -print_final_stats=0 \
	      $$work $$corpus >$(FUZZ_BUILD)/$$name.log 2>&1 \
	    || { tail -40 $(FUZZ_BUILD)/$$name.log; echo "fuzz: $$name FAILED"; exit 1; }; \
	  grep -E '^(#[0-9]+.*DONE|Done)' $(FUZZ_BUILD)/$$name.log | tail -1; \
	done; echo "fuzz: all targets ran without a crash"

# Deterministic replay of every seed corpus (no new inputs): what CI runs.
fuzz-replay: $(BUILD)/.deps $(FUZZ_BINS)
	@set -e; for f in $(FUZZ_BINS); do \
	  name=$$(basename $$f _fuzz); \
	  $$f -runs=0 tests/fuzz/corpus/$$name >$(FUZZ_BUILD)/$$name-replay.log 2>&1 \
	    || { tail -40 $(FUZZ_BUILD)/$$name-replay.log; echo "fuzz-replay: $$name FAILED"; exit 1; }; \
	  echo "fuzz-replay: $$name: $$(ls tests/fuzz/corpus/$$name | wc -l) seeds replayed, no crash"; \
	done

# ---- demo and benchmarks -----------------------------------------------------------------
# The demo runs the MCP reference server and the MCP SDK client from tests/interop (npm).
demo: all tests/interop/node_modules/.stamp
	@BUILD=$(BUILD) ./certs/demo.sh

# Only the federation part of the demo (two trust domains, their gateways, a CA rotation).
demo-federation: all tests/interop/node_modules/.stamp
	@BUILD=$(BUILD) ./certs/demo-federation.sh

bench: all $(BENCH_BINS)
	@echo "== mint"; $(BUILD)/bench/mint
	@echo "== workload (200 paced clients, 500 ms between one client's fetches)"; \
	  $(BUILD)/bench/workload --lanyard $(BUILD)/lanyard
	@echo "== workload saturation (200 clients back to back)"; \
	  $(BUILD)/bench/workload --lanyard $(BUILD)/lanyard --think-ms 0
	@echo "== gateway (handshakes against nginx, added latency, policy decisions)"; \
	  BUILD=$(BUILD) bench/gateway.sh
	@echo "== federation (a bundle change in one trust domain until it is in use in the other)"; \
	  BUILD=$(BUILD) bench/federation.sh

lint:
	@! grep -nE '\b(strcpy|strcat|strncpy|sprintf|vsprintf|gets|strtok|atoi|sscanf|system|popen|rand|gmtime|localtime)\s*\(' \
	  $$(git ls-files '*.c' '*.h') || { echo "lint: banned call above"; exit 1; }
	@echo "lint: no banned calls"
	@cppcheck --quiet --enable=warning,portability,performance --std=c11 --inline-suppr \
	  --error-exitcode=1 -I common -I svid -I trust-bundles -I broker \
	  --suppress=missingIncludeSystem common svid trust-bundles federation broker \
	  && echo "lint: cppcheck clean"

clean:
	rm -rf build build-asan build-fuzz
