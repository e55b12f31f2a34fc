#!/usr/bin/env bash
# Makes the lent GPU machine (the device tool's NVIDIA kinds: Ubuntu, Python 3.12, the NVIDIA driver
# and its Vulkan ICD, but no Vulkan loader and no network) able to build and run gpt4all-core's
# Vulkan backend, and builds llama.cpp's Vulkan llama-bench as the reference. The machine is fresh
# on every call, so each call starts with (from the repository root, .gpu carried):
#
#     bash benchmarks/gpu/setup.sh [--no-llama] && . /opt/gk/env.sh
#
# Everything comes from the carry folder .gpu (GPU_CARRY to use another; benchmarks/gpu/README.md
# says how to fill it): the loader debs are unpacked into / (as the device README says), the other
# debs (Vulkan and SPIR-V headers, glslc, spirv-tools, fmt, the validation layer) into /opt/gk, the wheels and
# kp (built here from its sdist against those) into /tmp/site, gpt4all-core is installed editable
# into the machine's python3, and llama.cpp is built in /opt/gk/llama.cpp while the rest goes on.
# Each step runs once per machine (a stamp in /opt/gk), logs to /opt/gk/logs, and its time is
# printed at the end with the slowest parts of the llama.cpp build.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CARRY=$(cd "${GPU_CARRY:-$ROOT/.gpu}" && pwd)
GK=${GK_PREFIX:-/opt/gk}
SITE=${GK_SITE:-/tmp/site}
LOADER_ROOT=${GK_LOADER_ROOT:-/}  # another only to try this script out elsewhere
LIB=usr/lib/x86_64-linux-gnu
KP_SDIST=$CARRY/src/kp-0.9.0.tar.gz
LLAMA_COMMIT=0c1e57098  # the llama.cpp vendored by llama-cpp-python 0.3.36 (its CHANGELOG)
LLAMA_SRC=$CARRY/src/llama.cpp-$LLAMA_COMMIT.tar.xz
BUILD_LLAMA=1  # 0: --no-llama; bg: --llama-background (its own session, niced: it outlives this
               # call on a warm machine; $GK/.done-llama or $GK/.done-llama.failed tells when it ends)
[ "${1:-}" = "--no-llama" ] && BUILD_LLAMA=0
[ "${1:-}" = "--llama-background" ] && BUILD_LLAMA=bg
VULKAN_ONLY=0  # --vulkan-only: the loader and headers, nothing else (enough for gpu/submit_latency.c)
[ "${1:-}" = "--vulkan-only" ] && VULKAN_ONLY=1
mkdir -p "$GK/logs" "$GK/bin"

now_ms() { date +%s%3N; }

# step NAME FUNCTION: run FUNCTION once per machine, its output in logs/NAME.log, its time in
# logs/NAME.time. It runs as a background job that is waited for: a function called as an `if`
# condition would run with `set -e` ignored.
step() {
  local name=$1 fn=$2 t0 ms rc=0
  if [ -e "$GK/.done-$name" ]; then echo "[setup] $name: done earlier"; return 0; fi
  echo "[setup] $name ..."
  t0=$(now_ms)
  "$fn" >"$GK/logs/$name.log" 2>&1 &
  wait $! || rc=$?
  ms=$(( $(now_ms) - t0 ))
  if [ "$rc" = 0 ]; then
    printf '%-8s %6.1f s\n' "$name" "$(( ms / 100 ))e-1" >"$GK/logs/$name.time"
    touch "$GK/.done-$name"
    echo "[setup] $name: $(( ms / 1000 )) s"
  else
    touch "$GK/.done-$name.failed"
    echo "[setup] $name FAILED (status $rc) after $(( ms / 1000 )) s; the end of $GK/logs/$name.log:"
    tail -n 40 "$GK/logs/$name.log"
    return 1
  fi
}

unpack() {  # DEB DIR
  if command -v dpkg >/dev/null; then dpkg -x "$1" "$2"; return; fi
  local tmp; tmp=$(mktemp -d)
  (cd "$tmp" && ar x "$1") && tar xf "$tmp"/data.tar.* -C "$2"
  rm -rf "$tmp"
}

first_file() { for f in "$@"; do [ -f "$f" ] && { echo "$f"; return; }; done; echo "$1"; }

vulkan() {
  local f icd egl
  for f in "$CARRY"/root-debs/*.deb; do unpack "$f" "$LOADER_ROOT"; done
  [ "$LOADER_ROOT" != / ] || ldconfig
  for f in "$CARRY"/debs/*.deb "$CARRY"/root-debs/libvulkan1_*.deb; do unpack "$f" "$GK"; done
  # vulkaninfo and the X libraries it links, apart: nothing else should load those
  mkdir -p "$GK/tools"
  for f in "$CARRY"/tool-debs/*.deb; do unpack "$f" "$GK/tools"; done
  printf '#!/bin/sh\nLD_LIBRARY_PATH="%s${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "%s" "$@"\n' \
    "$GK/tools/$LIB" "$GK/tools/usr/bin/vulkaninfo" >"$GK/bin/vulkaninfo"
  chmod +x "$GK/bin/vulkaninfo"
  icd=${VK_DRIVER_FILES:-}
  [ -n "$icd" ] || icd=$(first_file /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json \
                   /etc/vulkan/icd.d/nvidia_icd.json)
  egl=$(first_file /usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json /usr/share/glvnd/egl_vendor.d/10_nvidia.json)
  cat >"$GK/env.sh" <<EOF
# written by benchmarks/gpu/setup.sh
export PATH="$SITE/bin:$GK/bin:$GK/usr/bin:$GK/llama.cpp/build/bin:\$PATH"
export PYTHONPATH="$SITE\${PYTHONPATH:+:\$PYTHONPATH}"
export LD_LIBRARY_PATH="$GK/$LIB\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
export VK_DRIVER_FILES="$icd" __EGL_VENDOR_LIBRARY_FILENAMES="$egl"
export VK_LAYER_PATH="$GK/usr/share/vulkan/explicit_layer.d"
export GPU_CARRY="$CARRY" PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1
EOF
  cat "$GK/env.sh"
}

wheels() {
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
    "$CARRY"/wheels/*.whl
  ls "$SITE"
}

kp() {
  # kp's sdist would fetch Vulkan headers, fmt and pybind11 from the internet and drops
  # PYTHON_EXECUTABLE (a missing comma in its setup.py): hand everything to CMake in a toolchain
  # file. Its setup.py appends KOMPUTE_PYTHON_NUM_PARALLEL_THREADS character by character after
  # "-j", so the job count must be one digit.
  . "$GK/env.sh"
  local py pybind
  py=$(python3 -c 'import sys; print(sys.executable)')
  pybind=$(python3 -c 'import pybind11; print(pybind11.get_cmake_dir())')
  rm -rf "$GK/kp-0.9.0" && tar xzf "$KP_SDIST" -C "$GK" && python3 "$ROOT/tools/kp_patch.py" "$GK/kp-0.9.0"
  cat >"$GK/kp-toolchain.cmake" <<EOF
set(PYTHON_EXECUTABLE "$py" CACHE FILEPATH "")
set(Vulkan_INCLUDE_DIR "$GK/usr/include" CACHE PATH "")
set(Vulkan_LIBRARY "$GK/$LIB/libvulkan.so" CACHE FILEPATH "")
set(fmt_DIR "$GK/$LIB/cmake/fmt" CACHE PATH "")
set(pybind11_DIR "$pybind" CACHE PATH "")
EOF
  KOMPUTE_OPT_USE_BUILT_IN_VULKAN_HEADER=OFF KOMPUTE_OPT_USE_BUILT_IN_FMT=OFF KOMPUTE_OPT_USE_BUILT_IN_PYBIND11=OFF \
  KOMPUTE_OPT_INSTALL=OFF KOMPUTE_OPT_DISABLE_VULKAN_VERSION_CHECK=ON KOMPUTE_PYTHON_NUM_PARALLEL_THREADS=9 \
  CMAKE_GENERATOR=Ninja CMAKE_TOOLCHAIN_FILE="$GK/kp-toolchain.cmake" \
    python3 -m pip wheel --no-deps --no-build-isolation --no-index -w "$GK/wheels" "$GK/kp-0.9.0"
  python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target "$SITE" "$GK"/wheels/kp-0.9.0+gk5-*.whl
  python3 -c 'import kp; print(kp.Manager(0).get_device_properties())'
}

package() {
  # Editable, as ./dev.sh does: tests then run from the repository root against the built package
  # (the editable finder comes before the source tree), and changed shaders rebuild on import.
  . "$GK/env.sh"
  cd "$ROOT"
  local site
  site=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  if [ -w "$site" ]; then
    CYTHON=$(command -v cython) python3 -m pip install --no-index --no-deps --no-build-isolation -e .
  else  # then run from outside the repository root, or the source tree shadows the package
    echo "$site is not writable: a plain install into $SITE"
    CYTHON=$(command -v cython) python3 -m pip install --no-index --no-deps --no-build-isolation --target "$SITE" .
    cd /
  fi
  python3 -c 'from gpt4all_core.backend.vulkan.context import get_context; print(get_context(0).caps)'
}

llama() {
  . "$GK/env.sh"
  local src=$GK/llama.cpp t0
  rm -rf "$src"
  tar xJf "$LLAMA_SRC" -C "$GK"
  # Debian 12's Vulkan headers (1.3.239) lack VK_EXT_layer_settings, which only the validation
  # build (GGML_VULKAN_VALIDATE) uses: create the instance without the layer-settings chain.
  python3 - "$src/ggml/src/ggml-vulkan/ggml-vulkan.cpp" <<'EOF'
import sys
path = sys.argv[1]
s = open(path).read()
start = s.index("    VkBool32 enable_best_practice = layer_settings;")
end_text = "extensions, &layer_setting_info);"
end = s.index(end_text, start) + len(end_text)
s = s[:start] + "    vk::InstanceCreateInfo instance_create_info(vk::InstanceCreateFlags{}, &app_info, layers, extensions);" + s[end:]
open(path, "w").write(s)
EOF
  t0=$(now_ms)
  # AVX2 rather than -march=native for the CPU part, as dev.sh does (AMX paths crashed elsewhere)
  cmake -S "$src" -B "$src/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_VULKAN=ON -DBUILD_SHARED_LIBS=OFF \
    -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_CCACHE=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF \
    -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_COMMIT="$LLAMA_COMMIT" -DLLAMA_BUILD_NUMBER=0 \
    -DVulkan_INCLUDE_DIR="$GK/usr/include" -DVulkan_LIBRARY="$GK/$LIB/libvulkan.so" \
    -DVulkan_GLSLC_EXECUTABLE="$GK/usr/bin/glslc" -DSPIRV-Headers_DIR="$GK/usr/share/cmake/SPIRV-Headers"
  echo "configure: $(( ($(now_ms) - t0) / 1000 )) s"
  cmake --build "$src/build" -j "$(nproc)" --target llama-bench llama-completion
  "$src/build/bin/llama-bench" --help >/dev/null
}

llama_build_report() {  # the slowest build edges and the shader part, from ninja's log (ms)
  local log=$GK/llama.cpp/build/.ninja_log
  [ -f "$log" ] || return 0
  echo "[setup] llama.cpp build, slowest steps (s):"
  awk -F'\t' 'NR > 1 { printf "%8.1f  %s\n", ($2 - $1) / 1000, $4 }' "$log" | sort -rn | head -n 6
  awk -F'\t' 'NR > 1 && $4 ~ /vulkan-shaders|spv|shaders/ { s += $2 - $1; if ($2 > e) e = $2 }
              END { printf "[setup] shader generation: %.1f s of edges, done %.1f s into the build\n", s / 1000, e / 1000 }' "$log"
}

started=$(now_ms)
step vulkan vulkan
[ "$VULKAN_ONLY" = 0 ] || exit 0
step wheels wheels
llama_pid=
if [ "$BUILD_LLAMA" = 1 ]; then
  step llama llama &
  llama_pid=$!
elif [ "$BUILD_LLAMA" = bg ] && [ ! -e "$GK/.done-llama" ] && [ ! -e "$GK/.llama-started" ]; then
  touch "$GK/.llama-started"
  export -f step llama now_ms
  export GK LLAMA_SRC LLAMA_COMMIT LIB
  setsid nice -n 10 bash -c 'set -euo pipefail; step llama llama' >"$GK/logs/llama-step.log" 2>&1 </dev/null &
  echo "[setup] llama: building in the background (nice 10), log $GK/logs/llama.log"
fi
failed=0
step kp kp || failed=1
[ "$failed" = 0 ] && { step package package || failed=1; }
if [ -n "$llama_pid" ]; then
  wait "$llama_pid" || failed=1
  llama_build_report
fi
echo "[setup] step times:"
cat "$GK"/logs/*.time 2>/dev/null | sed 's/^/    /'
echo "[setup] total $(( ($(now_ms) - started) / 1000 )) s; now: . $GK/env.sh"
exit "$failed"
