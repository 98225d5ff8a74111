# floodgate: top-level wrapper around CMake + ctest.
#   make deps   install what is missing, from Debian's packages
#   make        build (release, build/)
#   make test   deps + normal and ASan+UBSan builds, unit + fuzz replay + e2e
#   make demo   deps + build + run the gateway demo on its embedded defaults
#   make bench  deps + build + side-by-side benchmarks (bench/); BASE_BIN=an
#               earlier floodgate binary runs beside the new one (gateway, broker)
#   make fuzz   clang libFuzzer builds, each target run for FUZZ_SECONDS
JOBS ?= $(shell nproc)
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
CTEST_FLAGS ?= --output-on-failure -j $(JOBS)

# Build and test dependencies, Debian package names.
DEPS := build-essential cmake pkg-config libyaml-dev libxxhash-dev libcjson-dev \
        libssl-dev libhiredis-dev libcriterion-dev clang libclang-rt-14-dev curl procps \
        python3 python3-pytest python3-requests python3-boto3 awscli redis-server chromium
BENCH_DEPS := haproxy nginx-light wrk rabbitmq-server librabbitmq-dev gdb binutils

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all build deps bench-deps test unit demo bench fuzz clean asan

all: build

deps:
	@missing=""; for p in $(DEPS) $(EXTRA_DEPS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

bench-deps:
	@$(MAKE) --no-print-directory deps EXTRA_DEPS="$(BENCH_DEPS)"

$(BUILD)/Makefile:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: $(BUILD)/Makefile
	cmake --build $(BUILD) -j $(JOBS)

$(ASAN_BUILD)/Makefile:
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSANITIZE=address

asan: $(ASAN_BUILD)/Makefile
	cmake --build $(ASAN_BUILD) -j $(JOBS)

test: deps
	$(MAKE) --no-print-directory build asan
	cd $(BUILD) && ctest $(CTEST_FLAGS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest $(CTEST_FLAGS)

unit: build
	cd $(BUILD) && ctest $(CTEST_FLAGS) -L 'unit|fuzz'

demo: deps
	$(MAKE) --no-print-directory build
	./scripts/demo.sh $(BUILD)/floodgate

bench: bench-deps
	$(MAKE) --no-print-directory build
	./bench/run.sh $(BUILD)/floodgate $(BASE_BIN)

fuzz: deps
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DBUILD_FUZZER=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(FUZZ_BUILD) -j $(JOBS)
	./fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
