#!/usr/bin/env bash
# Creates the venv that benchmarks/engine_throughput.py runs its peers in, separate from the
# project's own venv: $SCULPT_CACHE/bench-venv (default ~/.cache/sculpt/bench-venv) with
#   numpy + gguf          the GGUF reader / dequantization cross-check
#   torch (CPU)           the PyTorch column
#   llama-cpp-python      the llama.cpp column, compiled here from its sdist (CPU only, -march=native)
#   peft (+ transformers, accelerate)   the PyTorch + PEFT LoRA column of benchmarks/training_step.py
#   llama-bench           llama.cpp's own C++ benchmark, built from the same sources ($SCULPT_CACHE/llama-bench/bin)
# Idempotent: a package that already imports is left alone (FORCE=1 reinstalls).
#
#   SKIP_TORCH=1 / SKIP_LLAMA=1 / SKIP_PEFT=1 / SKIP_LLAMA_BENCH=1   leave that engine out (the benchmark then reports "not installed")
#   TORCH_SPEC=...                what to pip-install for torch instead of the choice below
#   JOBS=N                        parallel compile jobs for llama.cpp (default: all cores)
#   AVX2_LLAMA=1                  also a llama.cpp for AVX2 only, for quantized_engine.py --avx2
#
# Only PyPI and Debian's archive are reachable. PyTorch's CPU-only wheels are not on PyPI: the
# PyPI torch wheel for Linux is the CUDA build, whose dependencies (nvidia-*, cuda-toolkit,
# triton) add about 4 GB, and it does not import without them (--no-deps fails with "libcudart.so
# not found"). So: if pip's find-links (pip config / PIP_FIND_LINKS) hold a CPU wheel
# (torch-*+cpu-cp3XX-*.whl) for this Python, that wheel is installed (~0.2 GB download, ~0.7 GB
# installed); otherwise the PyPI wheel with all its dependencies (~5 GB installed; CUDA stays unused).
#
# Everything heavy runs under `nice -n 19`: the machine's cores are shared.
set -euo pipefail
cd "$(dirname "$0")/.."

SCULPT_CACHE="${SCULPT_CACHE:-$HOME/.cache/sculpt}"
VENV="$SCULPT_CACHE/bench-venv"
PYTHON="${PYTHON:-python3}"
JOBS="${JOBS:-$(nproc)}"
FORCE="${FORCE:-0}"

NUMPY_SPEC="numpy>=1.26"
GGUF_SPEC="gguf==0.19.0"
LLAMA_SPEC="llama-cpp-python==0.3.36"
TORCH_PYPI_SPEC="torch==2.15.0"
PEFT_SPECS="peft==0.21.2 transformers==5.23.0 accelerate==1.15.0"
# CPU-only llama.cpp: no GPU backends, no BLAS (ggml's own kernels, as llama-bench runs them),
# OpenMP threads, native ISA; skip the multimodal library, tools, tests and examples.
LLAMA_CMAKE_ARGS="-DGGML_NATIVE=ON -DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_VULKAN=OFF -DGGML_BLAS=OFF \
-DGGML_OPENMP=ON -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
-DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF"
# AMX off: some of the machines here report AMX in /proc/cpuinfo, and -march=native then builds
# ggml's AMX kernels, which die of SIGILL at their first tilezero on those VMs (seen on an Intel
# Xeon with amx_tile/amx_int8 flags, 2026-12). The explicit -mno-* flags win over -march=native.
LLAMA_CFLAGS=""
if grep -qw amx_tile /proc/cpuinfo 2>/dev/null; then LLAMA_CFLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"; fi
# What the installed build was compiled with: a change rebuilds it.
LLAMA_BUILD_ID="$LLAMA_SPEC $LLAMA_CMAKE_ARGS cflags=$LLAMA_CFLAGS"
LLAMA_MARKER="$VENV/.llama-cpp-build"

say() { printf '\033[1m== %s\033[0m\n' "$*"; }
pip_install() { nice -n 19 "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$@"; }
imports() { [ "$FORCE" != 1 ] && "$VENV/bin/python" -c "import $1" >/dev/null 2>&1; }

if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV"
    mkdir -p "$SCULPT_CACHE"
    "$PYTHON" -m venv "$VENV"
    pip_install --upgrade pip
fi
pip_install "$NUMPY_SPEC" "$GGUF_SPEC"

# A CPU-only torch wheel for this Python in one of pip's find-links folders, if any.
find_cpu_torch_wheel() {
    local tag dirs dir wheel
    tag=$("$VENV/bin/python" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
    dirs=$( { "$VENV/bin/python" -m pip config list 2>/dev/null | sed -n "s/^[^=]*find-links='\(.*\)'$/\1/p";
              printf '%s\n' ${PIP_FIND_LINKS:-}; } | tr ' ' '\n' | sed 's#^file://##' | sort -u)
    for dir in $dirs; do
        [ -d "$dir" ] || continue
        wheel=$(ls -1 "$dir"/torch-*+cpu-"$tag"-"$tag"-*linux*_"$(uname -m)".whl 2>/dev/null | sort -V | tail -n 1)
        if [ -n "$wheel" ]; then echo "$wheel"; return 0; fi
    done
    return 1
}

if [ "${SKIP_TORCH:-0}" = 1 ]; then
    say "torch: skipped (SKIP_TORCH=1)"
elif imports torch; then
    say "torch: $("$VENV/bin/python" -c 'import torch; print(torch.__version__)') already installed"
else
    start=$SECONDS
    if [ -n "${TORCH_SPEC:-}" ]; then
        say "torch: installing $TORCH_SPEC"
        pip_install "$TORCH_SPEC"
    elif wheel=$(find_cpu_torch_wheel); then
        say "torch: installing the CPU-only wheel $wheel (dependencies from PyPI)"
        pip_install "$wheel"
    else
        say "torch: installing $TORCH_PYPI_SPEC from PyPI with its CUDA dependencies (~5 GB; no CPU-only wheel on PyPI)"
        pip_install "$TORCH_PYPI_SPEC"
    fi
    "$VENV/bin/python" -c 'import torch; torch.set_num_threads(2); assert float(torch.ones(4) @ torch.ones(4)) == 4.0; print("   torch", torch.__version__, "imports")'
    say "torch: done in $((SECONDS - start)) s"
fi

# PEFT after torch, with the installed torch pinned so that its dependencies (transformers,
# accelerate) never swap the CPU wheel for PyPI's CUDA build. Pure-Python wheels: ~1 minute.
if [ "${SKIP_TORCH:-0}" = 1 ] || [ "${SKIP_PEFT:-0}" = 1 ]; then
    say "peft: skipped"
elif imports peft; then
    say "peft: $("$VENV/bin/python" -c 'import peft, transformers; print(peft.__version__, "with transformers", transformers.__version__)') already installed"
else
    start=$SECONDS
    torch_pin="torch==$("$VENV/bin/python" -c 'import torch; print(torch.__version__)')"
    say "peft: installing $PEFT_SPECS ($torch_pin kept)"
    # shellcheck disable=SC2086
    pip_install $PEFT_SPECS "$torch_pin"
    "$VENV/bin/python" -c 'import peft, transformers; print("   peft", peft.__version__, "transformers", transformers.__version__, "import")'
    say "peft: done in $((SECONDS - start)) s"
fi

if [ "${SKIP_LLAMA:-0}" = 1 ]; then
    say "llama-cpp-python: skipped (SKIP_LLAMA=1)"
elif imports llama_cpp && [ "$(cat "$LLAMA_MARKER" 2>/dev/null)" = "$LLAMA_BUILD_ID" ]; then
    say "llama-cpp-python: $("$VENV/bin/python" -c 'import llama_cpp; print(llama_cpp.__version__)') already installed"
else
    if ! command -v g++ >/dev/null 2>&1; then
        say "installing a C/C++ compiler (build-essential)"
        sudo_cmd=""
        [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
        $sudo_cmd apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq build-essential >/dev/null
    fi
    # cmake and ninja come from PyPI (scikit-build-core's build requirements); the compile of
    # llama.cpp takes 3–7 minutes on 2 shared cores.
    say "llama-cpp-python: compiling $LLAMA_SPEC (CPU only, $JOBS jobs, nice 19; several minutes)${LLAMA_CFLAGS:+, $LLAMA_CFLAGS}"
    start=$SECONDS
    # No wheel cache: a wheel built with other flags (or on another CPU) must not come back.
    CFLAGS="$LLAMA_CFLAGS" CXXFLAGS="$LLAMA_CFLAGS" CMAKE_ARGS="$LLAMA_CMAKE_ARGS" CMAKE_BUILD_PARALLEL_LEVEL="$JOBS" \
        pip_install --no-cache-dir --force-reinstall --no-deps "$LLAMA_SPEC"
    pip_install "$LLAMA_SPEC"  # its pure-Python dependencies, if missing
    echo "$LLAMA_BUILD_ID" > "$LLAMA_MARKER"
    "$VENV/bin/python" -c 'import llama_cpp; print("   llama_cpp", llama_cpp.__version__, "imports:", llama_cpp.llama_print_system_info().decode().strip())'
    say "llama-cpp-python: done in $((SECONDS - start)) s"
fi

# A second llama.cpp, for quantized_engine.py --avx2 (a CPU without AVX-512, on any machine):
# AVX2 + FMA + F16C only, installed beside the venv in $LLAMA_AVX2 (the benchmark puts it first
# on PYTHONPATH).
LLAMA_AVX2="$SCULPT_CACHE/llama-avx2"
LLAMA_AVX2_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF \
-DGGML_AVX_VNNI=OFF -DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_VULKAN=OFF -DGGML_BLAS=OFF -DGGML_OPENMP=ON -DLLAVA_BUILD=OFF \
-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF"
if [ "${AVX2_LLAMA:-0}" = 1 ]; then
    if [ -f "$LLAMA_AVX2/.build-id" ] && [ "$(cat "$LLAMA_AVX2/.build-id")" = "$LLAMA_SPEC $LLAMA_AVX2_ARGS" ]; then
        say "llama-cpp-python for AVX2: already in $LLAMA_AVX2"
    else
        say "llama-cpp-python for AVX2: compiling $LLAMA_SPEC into $LLAMA_AVX2 (several minutes)"
        start=$SECONDS
        rm -rf "$LLAMA_AVX2"
        CMAKE_ARGS="$LLAMA_AVX2_ARGS" CMAKE_BUILD_PARALLEL_LEVEL="$JOBS" \
            pip_install --no-cache-dir --no-deps --target "$LLAMA_AVX2" "$LLAMA_SPEC"
        echo "$LLAMA_SPEC $LLAMA_AVX2_ARGS" > "$LLAMA_AVX2/.build-id"
        PYTHONPATH="$LLAMA_AVX2" "$VENV/bin/python" -c 'import llama_cpp; print("   llama_cpp", llama_cpp.__version__, "imports:", llama_cpp.llama_print_system_info().decode().strip())'
        say "llama-cpp-python for AVX2: done in $((SECONDS - start)) s"
    fi
fi

# llama.cpp's own C++ llama-bench, from the same llama.cpp the Python bindings vendor (the
# llama-cpp-python sdist, its sha256 checked), built with the same flags: the peer that
# benchmarks/llama_nas_subnet.py times a shallow or narrow export against.
#   SKIP_LLAMA_BENCH=1   leave it out (the benchmarks then say it is missing)
LLAMA_BENCH_DIR="$SCULPT_CACHE/llama-bench"
LLAMA_SDIST_SHA256="832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
LLAMA_BENCH_ID="$LLAMA_SPEC $LLAMA_CMAKE_ARGS cflags=$LLAMA_CFLAGS"
if [ "${SKIP_LLAMA_BENCH:-0}" = 1 ]; then
    say "llama-bench: skipped (SKIP_LLAMA_BENCH=1)"
elif [ -x "$LLAMA_BENCH_DIR/bin/llama-bench" ] && [ "$(cat "$LLAMA_BENCH_DIR/.build-id" 2>/dev/null)" = "$LLAMA_BENCH_ID" ]; then
    say "llama-bench: already built in $LLAMA_BENCH_DIR"
else
    start=$SECONDS
    say "llama-bench: building from the $LLAMA_SPEC sdist (CPU only, $JOBS jobs, nice 19; several minutes)"
    pip_install cmake ninja
    src="$LLAMA_BENCH_DIR/src"
    rm -rf "$LLAMA_BENCH_DIR"
    mkdir -p "$src"
    "$VENV/bin/python" -m pip download -q --disable-pip-version-check --no-deps --no-binary llama-cpp-python "$LLAMA_SPEC" -d "$LLAMA_BENCH_DIR"
    sdist=$(ls "$LLAMA_BENCH_DIR"/llama_cpp_python-*.tar.gz)
    echo "$LLAMA_SDIST_SHA256  $sdist" | sha256sum -c --quiet - || { echo "llama-bench: the sdist's sha256 is not $LLAMA_SDIST_SHA256" >&2; exit 1; }
    tar xzf "$sdist" -C "$src" --strip-components=3 --wildcards '*/vendor/llama.cpp/*'
    # shellcheck disable=SC2086
    CFLAGS="$LLAMA_CFLAGS" CXXFLAGS="$LLAMA_CFLAGS" nice -n 19 "$VENV/bin/cmake" -S "$src" -B "$src/build" -G Ninja \
        -DCMAKE_MAKE_PROGRAM="$VENV/bin/ninja" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DLLAMA_CURL=OFF \
        ${LLAMA_CMAKE_ARGS/-DLLAMA_BUILD_TOOLS=OFF/-DLLAMA_BUILD_TOOLS=ON} >/dev/null
    nice -n 19 "$VENV/bin/cmake" --build "$src/build" --target llama-bench -j "$JOBS" >/dev/null
    mkdir -p "$LLAMA_BENCH_DIR/bin"
    cp "$src/build/bin/llama-bench" "$LLAMA_BENCH_DIR/bin/"
    rm -rf "$src" "$sdist"
    echo "$LLAMA_BENCH_ID" > "$LLAMA_BENCH_DIR/.build-id"
    "$LLAMA_BENCH_DIR/bin/llama-bench" --help >/dev/null
    say "llama-bench: done in $((SECONDS - start)) s ($LLAMA_BENCH_DIR/bin/llama-bench)"
fi

say "bench venv ready: $VENV ($(du -sh "$VENV" | cut -f1))"
echo "run: nice -n 19 $VENV/bin/python benchmarks/engine_throughput.py [--json OUT]"
