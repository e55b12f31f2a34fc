#!/usr/bin/env bash
# The whole GPU benchmark of issue 7 as one device-tool command, repeated until it exits 0:
#
#     bash benchmarks/gpu/run.sh [VULKAN.PY ARGS]   # from the repository root, .gpu carried; results under $OUT
#
# GPU_FILES (a comma list) benchmarks fewer files than all of FILES; arguments go on to vulkan.py
# (--sweep TYPES, --untuned-too FILES, --skip STEPS). GPU_LLAMA_PERF=FILE then runs llama-bench's
# decode of that file under ggml-vulkan's own per-op timer (GGML_VK_PERF_LOGGER: a timestamp and a
# barrier after each op, as gpu/profile_decode.py times ours), into $OUT/llama-perf.txt. GPU_MAKE
# (a comma list of make_models.py's names) makes only those files, in that order. GPU_TESTS (a
# comma list of test paths) runs those tests on the GPU instead of all of the Vulkan backend's.
#
# Each call: setup.sh (once per machine; llama.cpp builds in the background, niced, and may
# outlive the call), the model files (make_models.py, once per machine, in the background: the
# 6.7B files first), then benchmarks/vulkan.py, which does what fits before the deadline and
# keeps its results in /opt/gk/vulkan-state.json for the next call on the same warm machine (the
# device tool keeps one warm for 30 s). Exit status 3: call again.
set -euo pipefail
STARTED=$(date +%s)
LIMIT=${GPU_CALL_SECONDS:-590}  # the device tool's 600 s, less the copy of results
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=${OUT:-/tmp/out}
MODELS=/tmp/models
FILES=(random-llama-6.7b-Q4_0.gguf random-llama-1.1b-Q4_0.gguf random-SmolLM2-135M-Instruct.Q4_1.gguf
       random-llama-1.1b-Q4_K_M.gguf random-llama-1.1b-Q8_0.gguf random-llama-6.7b-Q4_K_M.gguf
       random-llama-6.7b-Q8_0.gguf)
[ -z "${GPU_FILES:-}" ] || IFS=, read -r -a FILES <<<"$GPU_FILES"
cd "$ROOT"
mkdir -p "$OUT" "$MODELS"
bash benchmarks/gpu/setup.sh --llama-background
. /opt/gk/env.sh
export GPT4ALL_CORE_TEST_DATA=$GPU_CARRY/testdata  # the tests' vocab donors, carried
export VULKAN_INCLUDE_DIR=/opt/gk/usr/include       # vulkan_core.h, which test_devices.py reads
if [ ! -e /opt/gk/.models-started ]; then
  touch /opt/gk/.models-started
  MAKE=(6.7b-q4_0 6.7b-q8_0 6.7b-q4_k_m 1.1b-q4_0 "like:$GPU_CARRY/src/SmolLM2-135M-Instruct.Q4_1.template.gguf"
        1.1b-q4_k_m 1.1b-q8_0)
  [ -z "${GPU_MAKE:-}" ] || IFS=, read -r -a MAKE <<<"$GPU_MAKE"  # fewer files, in this order
  setsid nice -n 5 python3 benchmarks/gpu/make_models.py --out "$MODELS" "${MAKE[@]}" \
    >/opt/gk/logs/models.log 2>&1 </dev/null &
fi
[ -e /opt/gk/device.json ] || python3 benchmarks/gpu/device_info.py >/opt/gk/device.json 2>/opt/gk/logs/device_info.log || true
[ -e /opt/gk/bandwidth.json ] || python3 benchmarks/gpu/bandwidth.py --json /opt/gk/bandwidth.json \
  >/opt/gk/logs/bandwidth.log 2>&1 || true
# one submit's round trip in plain Vulkan, fences made fresh or reused (gpu/submit_latency.c)
[ -e /opt/gk/submit.json ] || { cc -O2 -I/opt/gk/usr/include -o /opt/gk/bin/submit_latency \
  benchmarks/gpu/submit_latency.c -L/opt/gk/usr/lib/x86_64-linux-gnu -lvulkan && \
  /opt/gk/bin/submit_latency 0 2000 >/opt/gk/submit.json; } 2>/opt/gk/logs/submit_latency.log || true
rc=0
python3 benchmarks/vulkan.py --submit-latency /opt/gk/submit.json --models "$MODELS" --files "$(IFS=,; echo "${FILES[*]}")" \
  --llama-bench /opt/gk/llama.cpp/build/bin/llama-bench --llama-done /opt/gk/.done-llama \
  --bandwidth /opt/gk/bandwidth.json --state /opt/gk/vulkan-state.json --deadline $((STARTED + LIMIT)) --out "$OUT" "$@" || rc=$?
if [ -n "${GPU_LLAMA_PERF:-}" ] && [ -e /opt/gk/.done-llama ] && [ -e "$MODELS/$GPU_LLAMA_PERF" ]; then
  GGML_VK_PERF_LOGGER=1 GGML_VK_PERF_LOGGER_FREQUENCY=16 timeout 90 /opt/gk/llama.cpp/build/bin/llama-bench \
    -m "$MODELS/$GPU_LLAMA_PERF" -ngl 99 -p 0 -n 32 -r 1 >"$OUT/llama-perf.txt" 2>&1 || true
  tail -n 40 "$OUT/llama-perf.txt"
fi
cp /opt/gk/device.json /opt/gk/bandwidth.json /opt/gk/submit.json "$OUT"/ 2>/dev/null || true
tar czf "$OUT/logs.tgz" -C /opt/gk logs 2>/dev/null || true
tail -n 3 /opt/gk/logs/models.log 2>/dev/null || true
exit "$rc"
