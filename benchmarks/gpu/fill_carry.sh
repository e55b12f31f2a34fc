#!/usr/bin/env bash
# Fills the carry folder .gpu (git-ignored through .git/info/exclude) that setup.sh reads on the
# lent GPU machine, on a machine with network: Debian 12 amd64 debs, Python 3.12 wheels, the kp and
# llama.cpp sources and llama's vocab file. About 30 MB, under the device tool's 64 MiB.
#
#     bash benchmarks/gpu/fill_carry.sh [DIR]     # DIR: .gpu in the repository root
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DIR=${1:-$ROOT/.gpu}
LLAMA_CPP_PYTHON=0.3.36
LLAMA_COMMIT=0c1e57098  # what llama-cpp-python $LLAMA_CPP_PYTHON vendors (its CHANGELOG)
VOCAB=${GPT4ALL_CORE_TEST_DATA:-$HOME/.cache/gpt4all-core/testdata}/llama.cpp-models/ggml-vocab-llama-spm.gguf
mkdir -p "$DIR"/{root-debs,debs,tool-debs,wheels,src}
grep -qx '/.gpu/' "$ROOT/.git/info/exclude" 2>/dev/null || echo /.gpu/ >>"$ROOT/.git/info/exclude"

# debs: the loader and glvnd (unpacked into /), what builds need (into /opt/gk), vulkaninfo apart
apt=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64)
mkdir -p /tmp/amd64/partial
apt-get "${apt[@]}" update -qq
(cd "$DIR/root-debs" && apt-get "${apt[@]}" download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
(cd "$DIR/debs" && apt-get "${apt[@]}" download libvulkan-dev spirv-headers glslc libshaderc1 spirv-tools \
  libfmt-dev libfmt9 vulkan-validationlayers)
(cd "$DIR/tool-debs" && apt-get "${apt[@]}" download vulkan-tools libwayland-client0 libxcb1 libx11-6 libxau6 \
  libxdmcp6 libbsd0 libmd0 libffi8)

# wheels the machine lacks (KINDS.md's package list): the build's, the package's dependencies, and
# fixed versions of Cython, meson and pybind11 (the kp build was checked against pybind11 2.13.6)
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$DIR/wheels" \
  meson-python==0.22.1 pyproject-metadata==0.12.1 meson==1.12.1 Cython==3.3.1 pybind11==2.13.6 \
  pypdf==7.1.0 platformdirs==4.14.7 fastapi==0.165.0 uvicorn==0.54.0 sse-starlette==3.7.0 pydantic==2.14.3 \
  pydantic_core==2.50.4 starlette==1.10.0 annotated-types==0.8.0 typing-inspection==0.4.5 \
  typing_extensions==4.16.0 opentelemetry-api==1.45.2

# sources: kp's sdist as it is; llama-cpp-python's (77 MB) cut to the llama.cpp that llama-bench needs
python3 -m pip download -q --no-deps --no-binary :all: -d "$DIR/src" kp==0.9.0
tmp=$(mktemp -d)
python3 -m pip download -q --no-deps --no-binary :all: -d "$tmp" "llama-cpp-python==$LLAMA_CPP_PYTHON"
tar xzf "$tmp"/llama_cpp_python-*.tar.gz -C "$tmp" "llama_cpp_python-$LLAMA_CPP_PYTHON/vendor/llama.cpp"
(cd "$tmp/llama_cpp_python-$LLAMA_CPP_PYTHON/vendor" &&
  rm -rf llama.cpp/{.git,models,docs,media,benches,tests,examples,pocs,gguf-py,conversion,app,tools/ui,requirements,skills,ci,scripts,grammars,.github} llama.cpp/*.py &&
  tar cJf "$DIR/src/llama.cpp-$LLAMA_COMMIT.tar.xz" llama.cpp)
rm -rf "$tmp"
cp "$VOCAB" "$DIR/src/"
# the Vulkan tests run there too: their reference quantizer (gguf) and vocab donors
python3 -m pip download -q --no-deps --only-binary=:all: -d "$DIR/wheels" gguf==0.19.0
mkdir -p "$DIR/testdata/llama.cpp-models"
cp "$(dirname "$VOCAB")"/ggml-vocab-{llama-spm,qwen2}.gguf "$DIR/testdata/llama.cpp-models/"
# SmolLM2 (98 MB) cannot travel: its template (metadata, tensor names, types, shapes) does (the
# venv of ./dev.sh has gpt4all_core)
"$ROOT/.venv/bin/python" "$ROOT/benchmarks/gpu/make_models.py" --template "${GPT4ALL_MODEL_DIR:-$HOME/.cache/gpt4all}/SmolLM2-135M-Instruct.Q4_1.gguf" \
  "$DIR/src/SmolLM2-135M-Instruct.Q4_1.template.gguf"
du -sh "$DIR"
