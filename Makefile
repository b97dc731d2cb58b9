# mnistd - one binary that trains and serves small image networks.
#   make            build build/mnistd
#   make test       install missing Debian packages, prepare data, build, run every test
#   make asan       the same tests under AddressSanitizer + UndefinedBehaviorSanitizer
#   make tsan       the server's threaded suites under ThreadSanitizer
#   make run        set up and start the server on http://127.0.0.1:8080
#   make accuracy   the shipped models on drawn, photographed and scanned test images (a figure)
#   make bench      mnistd against PyTorch, ONNX Runtime, FastAPI and nginx side by side (bench/results/)
#   make data       put Fashion-MNIST and MNIST where mnistd looks (DATA_DIR)
#   make models     retrain the shipped default models from specs/ (deterministic)
#   make install    PREFIX=/usr/local DESTDIR=

CC      ?= cc
PREFIX  ?= /usr/local
DATA_DIR ?= data
MODELS_DIR ?= models
BUILD   ?= build

# gnutls: libmicrohttpd's TLS library; server/tls.c checks --tls-cert and
# --tls-key with it at start (libmicrohttpd would only fail the handshakes).
PKGS := libmicrohttpd libcjson libpng zlib gnutls libjpeg libexif libwebp libprotobuf-c
# ONNX is read and written by a protobuf-c parser generated at build time
# from the onnx.proto that Debian's libonnx-dev ships (core/onnx_*.c).
ONNX_PROTO ?= /usr/include/onnx/onnx.proto
# OpenBLAS: its headers only. core/blas.c dlopen()s the library after
# choosing its kernel from cpuid (blas.c says why), so it is never linked.
BLAS_PKG := openblas
# -O3 vectorises the elementwise passes (activations, im2col) that -O2 leaves
# scalar; it reorders no float arithmetic, so results stay bit for bit the same.
# Never -ffast-math: we rely on isfinite() and bitwise-reproducible training.
OPT     ?= -O3 -fno-math-errno
CFLAGS  ?= $(OPT) -g
ALL_CFLAGS := -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Wall -Wextra -Werror \
	-DMNISTD_SHARE_DIR='"$(PREFIX)/share/mnistd"' \
	-MMD -MP -Icore -Iserver -I$(BUILD)/gen $(SAN) $(CFLAGS) $(shell pkg-config --cflags $(PKGS) $(BLAS_PKG) 2>/dev/null) \
	$(shell pkg-config --cflags check 2>/dev/null)
LDLIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -ldl -lm -lpthread
TEST_LDLIBS := $(shell pkg-config --libs check 2>/dev/null)

CORE_SRC := $(wildcard core/*.c)
CLI_SRC  := $(wildcard cli/*.c)
SERVER_SRC := $(wildcard server/*.c)
TEST_SRC := $(wildcard tests/test_*.c)
CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/onnx.pb-c.o
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
SERVER_OBJ := $(SERVER_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/openapi.o
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
TEST_UTIL_OBJ := $(BUILD)/tests/util/check_util.o $(BUILD)/tests/util/check_http.o \
  $(BUILD)/tests/util/check_jpeg.o $(BUILD)/tests/util/check_server.o \
  $(BUILD)/tests/util/check_pipe.o

.PHONY: all test test-run contract clients browser overload asan tsan deps data models run install clean bench accuracy \
	container container-test deploy-lint
all: $(BUILD)/mnistd

# A stamp named after the flags: changing OPT, SAN or CFLAGS rebuilds everything.
FLAGS_STAMP := $(BUILD)/flags.$(shell echo '$(CC) $(ALL_CFLAGS)' | md5sum | cut -c1-12)
$(FLAGS_STAMP):
	@mkdir -p $(BUILD) && rm -f $(BUILD)/flags.* && touch $@

# The direct convolution's variants: a multiply and an add as one FMA where
# the instruction set has it (conv_kernel.c says why; C11 mode forbids it).
$(BUILD)/core/conv_kernel.o: ALL_CFLAGS += -ffp-contract=fast
# im2col's copies of a row of taps (three floats for a one-channel input)
# are inline loops; GCC turns such a loop back into a memmove call per row
# unless told not to (perf: 2% of a batch-normalized CNN's epoch there).
# The flag is GCC's: clang (the fuzz build) refuses it, so it is probed.
NO_LOOP_TO_MEMCPY := $(shell $(CC) -fno-tree-loop-distribute-patterns -Werror -E -x c /dev/null \
  >/dev/null 2>&1 && echo -fno-tree-loop-distribute-patterns)
$(BUILD)/core/conv2d.o: ALL_CFLAGS += $(NO_LOOP_TO_MEMCPY)

$(BUILD)/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

# The shared test helpers (tests/check_*.c), linked into every test binary.
$(TEST_UTIL_OBJ): $(BUILD)/tests/util/%.o: tests/%.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

# The ONNX messages as C structs and their (un)packers, from protoc-c.
$(BUILD)/gen/onnx.pb-c.c $(BUILD)/gen/onnx.pb-c.h: $(ONNX_PROTO)
	@mkdir -p $(BUILD)/gen
	protoc-c --proto_path=$(dir $(ONNX_PROTO)) --c_out=$(BUILD)/gen $(notdir $(ONNX_PROTO))
$(BUILD)/gen/onnx.pb-c.o: $(BUILD)/gen/onnx.pb-c.c $(FLAGS_STAMP)
	$(CC) $(ALL_CFLAGS) -c $< -o $@
ONNX_USERS := $(filter $(BUILD)/core/onnx_%.o,$(CORE_OBJ)) $(BUILD)/tests/fuzz/fuzz_onnx.o \
	$(BUILD)/tests/test_onnx.o
$(ONNX_USERS): | $(BUILD)/gen/onnx.pb-c.h

$(BUILD)/libmnistd.a: $(CORE_OBJ)
	$(AR) rcs $@ $^

# The contract is served by the binary itself (GET /openapi.yaml): embedded as a C string.
$(BUILD)/gen/openapi.c: openapi.yaml
	@mkdir -p $(dir $@)
	@awk 'BEGIN { print "/* generated from openapi.yaml by the Makefile */"; \
	  print "const char openapi_yaml[] ="; } \
	  { gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); print "    \"" $$0 "\\n\""; } \
	  END { print "    ;"; print "const unsigned long openapi_yaml_len = sizeof openapi_yaml - 1;"; }' $< > $@

$(BUILD)/gen/openapi.o: $(BUILD)/gen/openapi.c $(FLAGS_STAMP)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/libmnistd-server.a: $(SERVER_OBJ)
	$(AR) rcs $@ $^

$(BUILD)/mnistd: $(CLI_OBJ) $(BUILD)/libmnistd-server.a $(BUILD)/libmnistd.a
	$(CC) $(SAN) $(CFLAGS) -o $@ $^ $(LDLIBS)

# The engine's benchmark driver (make bench): core only, no server.
$(BUILD)/mnistd-bench: $(BUILD)/bench/bench_core.o $(BUILD)/libmnistd.a
	$(CC) $(SAN) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(TEST_UTIL_OBJ) $(BUILD)/libmnistd-server.a $(BUILD)/libmnistd.a
	$(CC) $(SAN) $(CFLAGS) -o $@ $^ $(TEST_LDLIBS) $(LDLIBS)

deps:
	@scripts/deps.sh

# mnistd against PyTorch, ONNX Runtime, FastAPI and nginx on the same cores, as ratios (not part of
# make test: it takes minutes and its figures are for people, not assertions).
BENCH_PEERS := python3-torch python3-numpy python3-threadpoolctl python3-fastapi \
	python3-uvicorn python3-uvloop python3-httptools python3-pil python3-multipart wrk \
	nginx-light
# ONNX Runtime comes from npm, pinned in bench/ort/package-lock.json; its
# install script only fetches GPU providers (and fails offline), the CPU
# library ships in the package: --ignore-scripts.
bench: data $(BUILD)/mnistd $(BUILD)/mnistd-bench
	@scripts/deps.sh $(BENCH_PEERS)
	@cd bench/ort && { [ -d node_modules ] || npm ci --ignore-scripts --no-audit --no-fund --silent; }
	DATA_DIR=$(DATA_DIR) /usr/bin/python3 bench/run.py $(BENCH_ARGS)

data: deps
	@scripts/fetch-data.sh $(DATA_DIR)

# The shipped models on the first ACCURACY_N test images of MNIST and
# Fashion-MNIST as people send them (scripts/accuracy.py generates them,
# seeded, in build/accuracy; nothing is committed but the contact sheets of
# the worst variants' misreads, in ACCURACY_SHEETS, for the README), through
# POST /predict on a real server. Not part of make test: a figure.
ACCURACY_N ?= 500
ACCURACY_SEED ?= 17
ACCURACY_SHEETS ?= docs/accuracy
accuracy: data
	@scripts/deps.sh python3-numpy python3-pil
	@$(MAKE) --no-print-directory $(BUILD)/mnistd
	/usr/bin/python3 scripts/accuracy.py --bin $(BUILD)/mnistd --models $(MODELS_DIR) \
	  --data $(DATA_DIR) --out $(BUILD)/accuracy --n $(ACCURACY_N) --seed $(ACCURACY_SEED) \
	  --sheets $(ACCURACY_SHEETS)

# Triton's tritonclient.http, unchanged, beside the project (../shared/clients);
# a clone elsewhere (CI's) finds it where the project's own checkout has it.
CLIENTS_DIR ?= $(firstword $(wildcard $(abspath ../shared/clients) /work/shared/clients) \
	$(abspath ../shared/clients))

# Tests find the binary, the data, specs and the Triton client through these variables.
test-run: $(TEST_BIN) $(BUILD)/mnistd
	@MNISTD_DATA=$(abspath $(DATA_DIR)) MNISTD_BIN=$(abspath $(BUILD)/mnistd) \
	 MNISTD_SRC=$(CURDIR) MNISTD_TRITON_CLIENTS=$(CLIENTS_DIR) scripts/run-tests.sh $(TEST_BIN)

test: data
	@$(MAKE) --no-print-directory test-run contract clients browser overload onnx

# ONNX in and out against the real tools (tests/onnx/, about a minute): networks
# trained briefly in PyTorch and exported by torch.onnx.export are imported and give
# PyTorch's probabilities within 1e-5 (test_onnx's Torch case, MNISTD_ONNX_DIR); every
# seed, shipped and imported model is exported, passes onnx.checker, and ONNX Runtime
# (npm onnxruntime-node, pinned in tests/onnx/package-lock.json) gives mnistd's
# probabilities within 1e-5. PyTorch's files are kept until torch_models.py changes.
ONNX_PEERS := python3-torch python3-onnx python3-numpy
ONNX_DIR := $(BUILD)/onnx
$(ONNX_DIR)/torch/.done: tests/onnx/torch_models.py
	@rm -rf $(ONNX_DIR) && mkdir -p $(ONNX_DIR)
	PYTHONWARNINGS=ignore /usr/bin/python3 tests/onnx/torch_models.py $(DATA_DIR) $(ONNX_DIR)
	@touch $@

.PHONY: onnx
onnx: $(BUILD)/tests/test_onnx
	@scripts/deps.sh $(ONNX_PEERS)
	@cd tests/onnx && { [ -d node_modules ] || npm ci --ignore-scripts --no-audit --no-fund --silent; }
	@$(MAKE) --no-print-directory $(ONNX_DIR)/torch/.done
	@rm -rf $(ONNX_DIR)/export
	@MNISTD_ONNX_DIR=$(abspath $(ONNX_DIR)) MNISTD_DATA=$(abspath $(DATA_DIR)) MNISTD_SRC=$(CURDIR) \
	  scripts/run-tests.sh $(BUILD)/tests/test_onnx
	/usr/bin/python3 tests/onnx/check_exports.py $(ONNX_DIR)
	node tests/onnx/ort.mjs $(ONNX_DIR)

# The server at and past its connection limit, on loopback
# (tests/overload/overload.py, about 90 s): floods of 1, 2 and 4 times
# --max-connections, slow clients from one and from many addresses, the
# 511-520 connection sweep, and SIGTERM under each, with the drain's limit.
overload: $(BUILD)/mnistd
	@scripts/deps.sh wrk
	@python3 tests/overload/overload.py $(BUILD)/mnistd $(DATA_DIR) $(MODELS_DIR)

# openapi.yaml linted (@redocly/cli: errors fail, warnings are shown in
# full by `tests/contract/node_modules/.bin/redocly lint openapi.yaml`) and
# validated, and a running server's responses checked against it (node,
# with the npm packages pinned in tests/contract/package-lock.json).
contract: $(BUILD)/mnistd
	@cd tests/contract && { [ -x node_modules/.bin/redocly ] || npm ci --no-audit --no-fund --silent; }
	@tests/contract/node_modules/.bin/redocly lint --format=summary openapi.yaml
	@node tests/contract/check.mjs $(abspath $(BUILD)/mnistd) $(CURDIR)/openapi.yaml \
	  $(abspath $(MODELS_DIR)) $(abspath $(DATA_DIR))

# The protocols' real clients against a running server (tests/clients/clients.py):
# Triton's tritonclient.http unchanged from ../shared/clients (CLIENTS_DIR),
# the body KServe's InferRequest.to_rest() sends, TorchServe's curl calls and
# TF Serving's REST calls. Debian's python3, for its numpy and gevent.
CLIENT_PKGS := python3-numpy python3-geventhttpclient python3-rapidjson python3-urllib3 \
	python3-packaging curl
clients: $(BUILD)/mnistd
	@scripts/deps.sh $(CLIENT_PKGS)
	@[ -d $(CLIENTS_DIR)/tritonclient ] || { echo "clients: no tritonclient in $(CLIENTS_DIR)"; exit 1; }
	@PYTHONPATH=$(CLIENTS_DIR) /usr/bin/python3 tests/clients/clients.py $(abspath $(BUILD)/mnistd) \
	  $(abspath $(MODELS_DIR)) $(abspath $(DATA_DIR))

# The page in Debian's headless Chromium, driven by playwright-core (never a
# downloaded browser); screenshots land in build/test-output/.
browser: $(BUILD)/mnistd
	@cd tests/browser && { [ -d node_modules ] || npm ci --no-audit --no-fund --silent; }
	@node tests/browser/page.test.mjs $(abspath $(BUILD)/mnistd) $(CURDIR) \
	  $(abspath $(DATA_DIR)) $(abspath $(BUILD))/test-output

# A separate build tree: sanitizer objects never mix with the normal ones.
# OpenBLAS is not instrumented; ASan still checks every access our code makes.
# CK_FORK=no: one process per test binary, so LeakSanitizer sees every test.
asan: data
	@CK_FORK=no $(MAKE) --no-print-directory BUILD=build/asan OPT=-O1 \
	  SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" \
	  MNISTD_QUICK=1 test-run

# The suites that run the server's threads (workers, acceptor, connection
# deadlines, request log, jobs, store and its watcher, recovery's child
# servers, test_concurrent's all at once, protected mode, the worker
# daemons speaking TLS, explanations, and version numbers given by writers
# and a deleter at once) under ThreadSanitizer, in a
# tree of their own. TSan runs code 5-15 times slower: Check's timeouts are
# scaled by CK_TIMEOUT_MULTIPLIER. Every process (test binaries, their
# forked tests, the mnistd children test_recovery starts) writes its reports
# to build/tsan/reports/; any report fails the run, whatever exit status
# the process had (a SIGKILLed child has none). Suppressions: none.
# OpenBLAS and GnuTLS are not instrumented: TSan sees our accesses, not
# their internal ones.
TSAN_RUNS ?= test_http test_connections test_access_log test_recovery test_hostile test_concurrent \
  test_protected test_tls test_protocols test_explain_http test_upload test_versions
tsan: data
	@scripts/deps.sh libtsan2
	@rm -rf build/tsan/reports && mkdir -p build/tsan/reports
	@start=$$(date +%s); \
	  CK_TIMEOUT_MULTIPLIER=10 TSAN_OPTIONS="log_path=$(abspath build/tsan/reports)/tsan \
	    second_deadlock_stack=1 exitcode=66" \
	  $(MAKE) --no-print-directory BUILD=build/tsan OPT=-O1 \
	    SAN="-fsanitize=thread -fno-omit-frame-pointer" MNISTD_QUICK=1 \
	    TEST_BIN="$(TSAN_RUNS:%=build/tsan/tests/%)" test-run; rc=$$?; \
	  reports=$$(ls build/tsan/reports); \
	  echo "tsan: $$(echo $$reports | wc -w) report files after $$(( $$(date +%s) - start )) s"; \
	  [ -z "$$reports" ] || { cat build/tsan/reports/*; exit 1; }; exit $$rc

# The HTTP tests under valgrind's memcheck, in a tree of their own built
# without sanitizers (-O1 -g); CK_FORK=no keeps every test in one process, so
# every leak is seen. Any error, any leak or any failed check fails it. No
# suppressions are needed (OpenBLAS, libmicrohttpd and libpng run clean).
# Training runs some 500 times slower under memcheck, so the Check cases
# with training jobs (test_http's Jobs, test_hostile's Queue) are left out by
# default: VALGRIND_RUNS="test_http test_hostile" runs all (about 25 minutes).
VALGRIND_RUNS ?= test_http:Server test_hostile:Hostile
.PHONY: valgrind
valgrind: data
	@scripts/deps.sh valgrind
	@$(MAKE) --no-print-directory BUILD=build/valgrind OPT=-O1 SAN= build/valgrind/mnistd \
	  $(foreach r,$(VALGRIND_RUNS),build/valgrind/tests/$(firstword $(subst :, ,$(r))))
	@for run in $(VALGRIND_RUNS); do test=$${run%%:*}; case=; \
	  [ "$$test" = "$$run" ] || case=$${run#*:}; start=$$(date +%s); \
	  env CK_FORK=no MNISTD_QUICK=1 MNISTD_DATA=$(abspath $(DATA_DIR)) \
	    MNISTD_BIN=$(abspath build/valgrind/mnistd) MNISTD_SRC=$(CURDIR) $${case:+CK_RUN_CASE=$$case} \
	    valgrind -q --leak-check=full --error-exitcode=1 --num-callers=30 \
	    build/valgrind/tests/$$test >build/valgrind/$$test.log 2>&1; rc=$$?; \
	  grep -E "^[0-9]+%: Checks" build/valgrind/$$test.log; \
	  grep -qE "Checks: [1-9]" build/valgrind/$$test.log || rc=1; \
	  echo "valgrind: $$run exited $$rc after $$(( $$(date +%s) - start )) s"; \
	  [ $$rc = 0 ] || { grep -E "^==[0-9]+==|Failure|Error" build/valgrind/$$test.log | head -40; exit 1; }; done

# A bounded load test on loopback (scripts/soak.sh; SOAK_SECONDS=60): wrk at
# 64 connections on POST /predict while jobs are trained and cancelled and
# versions published and deleted; fails on any 5xx, socket error, unfinished
# job, or VmRSS growth past its margin. Its own build tree.
.PHONY: soak
soak: data
	@scripts/deps.sh wrk curl
	@$(MAKE) --no-print-directory BUILD=build/soak build/soak/mnistd
	scripts/soak.sh build/soak/mnistd $(DATA_DIR) $(MODELS_DIR)

# Crash safety under repetition (scripts/chaos.py): start the server on a
# store, load it (predictions, training that publishes, cancels, deletes),
# SIGKILL it at a random moment, restart, check the store, the listing,
# the answers and the journal; as many cycles as CHAOS_SECONDS allow. It
# reports the cycles and the kill points reached (CHAOS_SEED= replays one).
CHAOS_SECONDS ?= 240
.PHONY: chaos
chaos: data
	@$(MAKE) --no-print-directory $(BUILD)/mnistd
	@python3 scripts/chaos.py $(BUILD)/mnistd $(abspath $(DATA_DIR)) $(MODELS_DIR) \
	  --seconds $(CHAOS_SECONDS) $(if $(CHAOS_SEED),--seed $(CHAOS_SEED))

# Targets that start with `data` (and so with deps) build in a sub-make: the
# pkg-config flags above are read again once the packages are installed.
# `make models NAMES="digits fashion"` retrains only those.
models: data
	@$(MAKE) --no-print-directory $(BUILD)/mnistd
	scripts/make-models.sh $(BUILD)/mnistd $(DATA_DIR) $(MODELS_DIR) $(NAMES)

# The server on http://127.0.0.1:8080 (HOST=, PORT= to change), with the shipped models.
run: data
	@$(MAKE) --no-print-directory $(BUILD)/mnistd
	$(BUILD)/mnistd serve --host $${HOST:-127.0.0.1} --port $${PORT:-8080} \
	  --models $(MODELS_DIR) --data $(DATA_DIR) --static static --specs specs

install: $(BUILD)/mnistd
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/mnistd/specs $(DESTDIR)$(PREFIX)/share/mnistd/models
	install -m 755 $(BUILD)/mnistd $(DESTDIR)$(PREFIX)/bin/mnistd
	install -m 644 specs/*.json $(DESTDIR)$(PREFIX)/share/mnistd/specs/
	for m in $(MODELS_DIR)/*/v*.mnm; do \
	  install -D -m 644 $$m $(DESTDIR)$(PREFIX)/share/mnistd/models/$${m#$(MODELS_DIR)/}; done
	install -d $(DESTDIR)$(PREFIX)/share/mnistd/static
	cp -R static/. $(DESTDIR)$(PREFIX)/share/mnistd/static/

# The image from deploy/Dockerfile, with podman (scripts/container.sh says why
# and how); container-test also runs it: predict, train, restart, SIGTERM.
CONTAINER_PKGS := podman buildah runc uidmap slirp4netns fuse-overlayfs debootstrap curl
container:
	@scripts/deps.sh $(CONTAINER_PKGS)
	@scripts/container.sh build

container-test: data
	@scripts/deps.sh $(CONTAINER_PKGS)
	@scripts/container.sh test

# deploy/k8s run for real in podman's pod engine (scripts/kube-test.sh):
# the serving replicas over one store volume and the training Job's pod
# publishing into it; every replica serves the new version within the watch
# interval, and a version deleted through one leaves them all. Where podman
# cannot run containers it says why and skips (exit 0, "SKIPPED"). catatonit:
# the pause process of the pods' infra containers.
.PHONY: kube-test
kube-test:
	@scripts/deps.sh $(CONTAINER_PKGS) catatonit python3-yaml openssl
	@scripts/kube-test.sh

# deploy/ checked offline: the Dockerfile (dockerfilelint), the YAML
# (yamllint), the Kubernetes objects against their schemas (kubernetes-models,
# tests/deploy/validate.mjs) and the systemd unit (systemd-analyze verify, on
# a copy that runs the built binary; any complaint fails, as it only warns).
deploy-lint: $(BUILD)/mnistd
	@scripts/deps.sh yamllint systemd
	@cd tests/deploy && { [ -d node_modules ] || npm ci --no-audit --no-fund --silent; }
	tests/deploy/node_modules/.bin/dockerfilelint -c deploy deploy/Dockerfile
	yamllint -c deploy/.yamllint deploy/k8s deploy/compose.yaml
	node tests/deploy/validate.mjs deploy/k8s/*.yaml
	sed 's|/usr/bin/mnistd|$(abspath $(BUILD)/mnistd)|' deploy/mnistd.service >$(BUILD)/mnistd.service
	@out=$$(systemd-analyze verify $(BUILD)/mnistd.service 2>&1); \
	  [ -z "$$out" ] || { echo "$$out"; exit 1; }; echo "deploy/mnistd.service: verified"

# libFuzzer targets (tests/fuzz/fuzz_*.c) under ASan and UBSan, built in a
# sub-make with clang in build/fuzz (core and server objects included), with
# a libpng instrumented the same way, built once from Debian's source package
# (scripts/fuzz.sh libpng). Each target runs FUZZ_SECONDS from
# tests/fuzz/corpus/TARGET; new inputs go to build/fuzz/corpus/TARGET, and a
# crash fails the make with its input in build/fuzz/crashes/.
FUZZ_SECONDS ?= 60
FUZZ_BIN := $(patsubst tests/fuzz/%.c,build/fuzz/bin/%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_SAN := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer -Ibuild/fuzz/libpng/src
.PHONY: fuzz
fuzz:
	@scripts/deps.sh clang libclang-rt-14-dev dpkg-dev xz-utils
	@scripts/fuzz.sh libpng build/fuzz/libpng
	@$(MAKE) --no-print-directory BUILD=build/fuzz CC=clang OPT=-O1 SAN="$(FUZZ_SAN)" $(FUZZ_BIN)
	@scripts/fuzz.sh run build/fuzz $(FUZZ_SECONDS) $(FUZZ_BIN)

# The instrumented libpng, never the system's.
$(BUILD)/bin/fuzz_%: $(BUILD)/tests/fuzz/fuzz_%.o $(BUILD)/libmnistd-server.a $(BUILD)/libmnistd.a \
		$(BUILD)/libpng/src/.libs/libpng16.a
	@mkdir -p $(dir $@)
	$(CC) $(SAN) -fsanitize=fuzzer $(CFLAGS) -o $@ $^ $(filter-out -lpng16,$(LDLIBS))

clean:
	rm -rf build

-include $(shell find $(BUILD) -path $(BUILD)/podman -prune -o -name '*.d' -type f -print 2>/dev/null)
# Keep test objects (intermediates of the pattern chain) for incremental builds.
.SECONDARY: $(TEST_SRC:tests/%.c=$(BUILD)/tests/%.o)
