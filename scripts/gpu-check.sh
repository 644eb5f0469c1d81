#!/usr/bin/env bash
# GPU check: one run on a machine with a CUDA PyTorch (and no .NET) gives the whole table.
#
#   scripts/gpu-check.sh --prepare
#       (here, with .NET) publishes a self-contained di without libtorch (-p:BringYourOwnLibTorch=true) to
#       artifacts/di-gpu and packs it as artifacts/di-gpu.tar.xz (~30 MB) to carry to the GPU machine.
#   scripts/gpu-check.sh [--di artifacts/di-gpu(.tar.xz)] [--device cuda:0] [--python python3] [--libtorch DIR] [--out DIR]
#       (there) loads that machine's libtorch (the python's torch/lib unless --libtorch) and runs on the device:
#       - the fixture tests' CLI equivalents: `di infer` on tests/fixtures (Llama, Qwen2, Qwen3, Mistral, GPT-2 logits,
#         greedy generation and classification, MiniLM embeddings) in fp32 (within 1e-4; ids equal) and bf16 (logits
#         within 2e-2 of the largest expected logit), compared by bench/check_outputs.py (plain python);
#       - text-to-image on the sd-tiny fixture (PNDM, DDIM, Euler with its latents; images within 1 level);
#       - `di bench model` for gpt2 and llama-3.2-1b (random weights) in bf16, next to PyTorch eager of the same shapes;
#       - `di bench text-to-image`: seconds per denoising step of sd-1.5 at 512x512, batch 1 and 4, fp16 and bf16,
#         next to a plain PyTorch UNet of the same shapes;
#       - `di bench replica` (actor overhead) on the device;
#       then prints one table. Under 10 minutes on one GPU.
#   scripts/gpu-check.sh --device cpu ...
#       dry mode, as CI runs it: the same steps on the CPU with tiny sizes (gpt2-tiny, the llama3-tiny fixture), so
#       the script does not rot while no GPU is at hand.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
device=cuda:0
di_path="$root/artifacts/di-gpu"
python=${PYTHON:-python3}
libtorch=""
out=""
prepare=false
while [ $# -gt 0 ]; do
  case "$1" in
    --device) device=$2; shift 2 ;;
    --di) di_path=$2; shift 2 ;;
    --python) python=$2; shift 2 ;;
    --libtorch) libtorch=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --prepare) prepare=true; shift ;;
    -h|--help) sed -n '2,/^set -uo pipefail$/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "gpu-check: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

if $prepare; then
  rm -rf "$root/artifacts/di-gpu"
  dotnet publish "$root/src/Host" -c Release -r linux-x64 --self-contained -p:BringYourOwnLibTorch=true -o "$root/artifacts/di-gpu" -v quiet || exit 1
  tar -C "$root/artifacts" -cJf "$root/artifacts/di-gpu.tar.xz" di-gpu || exit 1
  ls -la "$root/artifacts/di-gpu.tar.xz"
  exit 0
fi

started=$(date +%s)
out=${out:-$(mktemp -d)}
mkdir -p "$out"
table="$out/table.txt"
: > "$table"
failures=0
fixtures="$root/tests/fixtures"
check="$python $root/bench/check_outputs.py"

# The di to run: a folder (self-contained `di`, or a framework-dependent di.dll) or a .tar.xz of one.
if [[ "$di_path" == *.tar.xz ]]; then
  tar -C "$out" -xJf "$di_path" || exit 1
  di_path="$out/$(tar -tJf "$di_path" | head -1 | cut -d/ -f1)"
fi
if [ -x "$di_path/di" ] && [ -f "$di_path/libcoreclr.so" ]; then
  di=("$di_path/di")
elif [ -f "$di_path/di.dll" ]; then
  di=(dotnet "$di_path/di.dll")
else
  echo "gpu-check: no di in $di_path (run scripts/gpu-check.sh --prepare where .NET is, then pass --di)" >&2
  exit 2
fi

if [ -z "$libtorch" ]; then
  libtorch=$($python -c 'import torch, os; print(os.path.dirname(torch.__file__) + "/lib")') || {
    echo "gpu-check: $python cannot import torch; pass --libtorch DIR" >&2
    exit 2
  }
fi
export DI_LIBTORCH="$libtorch"
export LD_LIBRARY_PATH="$libtorch${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# The PyTorch baseline of `di bench model` uses the same python.
export DI_BENCH_PYTHON="$python"

row() { printf '%-34s | %-4s | %s\n' "$1" "$2" "$3" >> "$table"; }

# run NAME CMD...: runs a command with a time limit, logs it, records a FAIL row when it fails.
run() {
  local name=$1; shift
  echo "== $name: $*"
  if ! timeout 300 "$@" > "$out/$name.log" 2>&1; then
    cat "$out/$name.log"
    row "$name" FAIL "command failed: see $out/$name.log"
    failures=$((failures + 1))
    return 1
  fi
  cat "$out/$name.log"
}

# compare NAME ARGS...: bench/check_outputs.py compare, one table row.
compare() {
  local name=$1; shift
  local line
  line=$($check compare "$@" 2>&1)
  local status=$?
  echo "$line"
  row "$name" "$([ $status -eq 0 ] && echo PASS || echo FAIL)" "${line#* }"
  [ $status -eq 0 ] || failures=$((failures + 1))
}

run env "${di[@]}" env --libtorch "$libtorch" && row "libtorch" INFO "$(grep -m1 -i 'loaded' "$out/env.log" | cut -c1-110)"

echo "== fixtures on $device"
for fixture in llama3-tiny qwen2-tiny qwen3-tiny mistral-tiny; do
  expected="$fixtures/$fixture/expected.safetensors"
  model="$fixtures/$fixture/model"
  for dtype in fp32 bf16; do
    result="$out/$fixture-logits-$dtype.safetensors"
    if run "$fixture-logits-$dtype" "${di[@]}" infer --model "$model" --task logits --input-ids "$expected" --output "$result" --devices "$device" --dtype "$dtype" --quiet; then
      if [ "$dtype" = fp32 ]; then tolerance=(--abs 1e-4); else tolerance=(--rel 2e-2); fi
      compare "$fixture logits $dtype" "$expected:logits" "$result:logits" --mask "$expected:attention_mask" "${tolerance[@]}"
    fi
  done
  $check prepare "$expected" "$out/$fixture-greedy-in.safetensors" greedy_input_ids=input_ids greedy_attention_mask=attention_mask
  result="$out/$fixture-greedy.safetensors"
  if run "$fixture-greedy" "${di[@]}" infer --model "$model" --task generate --max-new-tokens 10 --input-ids "$out/$fixture-greedy-in.safetensors" --output "$result" --devices "$device" --dtype fp32 --quiet; then
    compare "$fixture greedy fp32" "$expected:greedy_output" "$result:output_ids" --exact
  fi
done

expected="$fixtures/gpt2-tiny/expected.safetensors"
for dtype in fp32 bf16; do
  result="$out/gpt2-tiny-logits-$dtype.safetensors"
  if run "gpt2-tiny-logits-$dtype" "${di[@]}" infer --model "$fixtures/gpt2-tiny/lm" --task logits --input-ids "$expected" --output "$result" --devices "$device" --dtype "$dtype" --quiet; then
    if [ "$dtype" = fp32 ]; then tolerance=(--abs 1e-4); else tolerance=(--rel 2e-2); fi
    compare "gpt2-tiny logits $dtype" "$expected:lm_logits" "$result:logits" "${tolerance[@]}"
  fi
done
$check prepare "$expected" "$out/gpt2-greedy-in.safetensors" greedy_prompt=input_ids
if run gpt2-tiny-greedy "${di[@]}" infer --model "$fixtures/gpt2-tiny/lm" --task generate --max-new-tokens 12 --input-ids "$out/gpt2-greedy-in.safetensors" --output "$out/gpt2-greedy.safetensors" --devices "$device" --quiet; then
  compare "gpt2-tiny greedy fp32" "$expected:greedy_output" "$out/gpt2-greedy.safetensors:output_ids" --exact
fi
$check prepare "$expected" "$out/gpt2-cls-in.safetensors" cls_input_ids=input_ids
if run gpt2-tiny-classify "${di[@]}" infer --model "$fixtures/gpt2-tiny/cls" --task classify --input-ids "$out/gpt2-cls-in.safetensors" --output "$out/gpt2-cls.safetensors" --devices "$device" --quiet; then
  compare "gpt2-tiny classify fp32" "$expected:cls_logits" "$out/gpt2-cls.safetensors:logits" --abs 1e-4
fi
expected="$fixtures/minilm-tiny/expected.safetensors"
$check prepare "$expected" "$out/minilm-in.safetensors" input_ids=input_ids attention_mask=attention_mask
if run minilm-tiny-embed "${di[@]}" infer --model "$fixtures/minilm-tiny/model" --task embed --input-ids "$out/minilm-in.safetensors" --output "$out/minilm.safetensors" --devices "$device" --quiet; then
  compare "minilm-tiny embed fp32" "$expected:embeddings" "$out/minilm.safetensors:embeddings" --abs 1e-4
fi

expected="$fixtures/sd-tiny/expected.safetensors"
$check prepare "$expected" "$out/sd-latents.safetensors" latents_init=latents
for run_steps in pndm:4 ddim:3 euler:3; do
  scheduler=${run_steps%%:*}
  if run "sd-tiny-$scheduler" "${di[@]}" infer --model "$fixtures/sd-tiny/model" --task text-to-image --devices "$device" --quiet \
      --prompts "a photo of an astronaut riding a horse on mars" "A painting of a squirrel eating a burger, highly detailed" "a watercolor landscape with mountains and a lake at sunset" \
      --negative-prompt "blurry, low quality" "" "ugly, distorted" --scheduler "$scheduler" --num-inference-steps "${run_steps##*:}" \
      --height 32 --width 48 --latents "$out/sd-latents.safetensors" --output "$out/sd-$scheduler.safetensors"; then
    compare "sd-tiny $scheduler images" "$expected:${scheduler}_image_uint8" "$out/sd-$scheduler.safetensors:images" --abs 1
  fi
done

echo "== speed on $device"
if [ "$device" = cpu ]; then
  # Dry mode: tiny sizes, so CI exercises every step in seconds.
  bench_models=("gpt2-tiny" "$fixtures/llama3-tiny/model")
  bench_args=(--dtype fp32 --batch 2 --sequence 16 --new-tokens 4 --rounds 1 --matmul-size 256 --bandwidth-mb 16)
  replica_args=(--model gpt2-tiny --rows 16 --sequence 16 --max-batch-size 8 --repeats 1)
  diffusion_args=(--model sd-tiny --size 32 --batches 1 --dtypes fp32 --steps 1)
else
  bench_models=(gpt2 llama-3.2-1b)
  bench_args=(--dtype bf16 --batch 8 --sequence 1024 --new-tokens 64 --rounds 5 --matmul-size 8192 --bandwidth-mb 4000)
  replica_args=(--model gpt2 --dtype bf16 --rows 256 --sequence 128 --max-batch-size 32 --repeats 5)
  diffusion_args=(--model sd-1.5 --size 512 --batches 1,4 --dtypes fp16,bf16 --steps 5)
fi
for model in "${bench_models[@]}"; do
  label=$(basename "$model")
  [ "$label" = model ] && label=$(basename "$(dirname "$model")")
  name="bench-model-$label"
  if run "$name" "${di[@]}" bench model --model "$model" --device "$device" "${bench_args[@]}"; then
    row "bench model $label" INFO "$(grep -m1 'device:' "$out/$name.log" | sed 's/^ *device: //' | cut -c1-150)"
    row "" "" "$(grep -m1 '^  forward' "$out/$name.log" | sed 's/^ *//' | cut -c1-150)"
    row "" "" "$(tail -1 "$out/$name.log" | cut -c1-150)"
  fi
done
if run bench-text-to-image "${di[@]}" bench text-to-image --device "$device" "${diffusion_args[@]}"; then
  while read -r line; do row "bench text-to-image" INFO "$line"; done < <(grep '^| [bf]' "$out/bench-text-to-image.log")
fi
if run bench-replica "${di[@]}" bench replica --device "$device" "${replica_args[@]}"; then
  row "bench replica" INFO "$(tail -1 "$out/bench-replica.log" | cut -c1-150)"
fi

elapsed=$(( $(date +%s) - started ))
echo
echo "== gpu-check on $device: $(hostname), $(date -u +%Y-%m-%dT%H:%MZ), ${elapsed} s, logs in $out"
if command -v nvidia-smi > /dev/null && [ "$device" != cpu ]; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
fi
cat "$table"
echo "$failures check(s) failed"
[ "$failures" -eq 0 ]
