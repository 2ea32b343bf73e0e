#!/usr/bin/env bash
# Everything the WebGPU issue asks of the lent GPU machine, in as few `run` calls as possible (carry [".gl"] after
# `bash scripts/device-pack.sh` here). Steps, in the order given:
#   tests    the WebGPU test suite (every fixture on the GPU, kernels vs CPU references) → $OUT/webgpu-tests.txt
#   moe      bench/gpu-moe-layer (all shapes, bf16/f16, T = 1…4096)                     → $OUT/gpu-moe-layer.json
#   decode   bench/gpu-decode (WebGPU vs the CPU backend)                                 → $OUT/gpu-decode.json
#   tiles    bf16 and f16 layers at T = 512, 4096 on each tensor-core tile and on the f32 tiles → $OUT/gpu-moe-tiles-*.json
#            (which tile should be the default; `moe` already ran the default one)
#   t1       T = 1 and 8 layers with the expert kernels forced to decode (moe-decode.ts) and to the GEMV path, to check
#            that 'auto' picks the faster at one token                                  → $OUT/gpu-moe-t1-*.json
#   host     bench/gpu-host: the host cost of a decode step on this machine's CPU (Dawn's null backend), the
#            ceiling on decode tok/s that no GPU lifts (read it beside `decode`)            → $OUT/gpu-host.json
# e.g. run(command="bash scripts/device-suite.sh tests moe", carry=[".gl"], timeout_s=600), then copy the JSON files
# from files_at into bench/results/ here and commit them.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/switchyard-out}
mkdir -p "$OUT"
BASELINE=.gl/shared/baselines/torch_moe_h100.json
status=0
for step in "$@"; do
  case "$step" in
    tests)
      bash scripts/device-run.sh scripts/run-tests.mjs backend/webgpu 2>&1 | tee "$OUT/webgpu-tests.txt" | grep -E '^(ℹ|✖)|not ok' ;
      [ "${PIPESTATUS[0]}" = 0 ] || status=1 ;;
    moe)
      bash scripts/device-run.sh dist/bench/gpu-moe-layer.js --baseline "$BASELINE" --out "$OUT/gpu-moe-layer.json" || status=1 ;;
    decode)
      bash scripts/device-run.sh dist/bench/gpu-decode.js --out "$OUT/gpu-decode.json" || status=1 ;;
    tiles)
      for v in "--coop-tile 64x2" "--coop-tile 128x1" "--no-tensor-cores"; do
        name=$(echo "$v" | tr -d ' -')
        bash scripts/device-run.sh dist/bench/gpu-moe-layer.js --baseline "$BASELINE" --dtypes bf16,f16 --tokens 512,4096 $v \
          --out "$OUT/gpu-moe-tiles-$name.json" || status=1
      done ;;
    t1)
      for p in decode gemv; do
        bash scripts/device-run.sh dist/bench/gpu-moe-layer.js --baseline "$BASELINE" --tokens 1,8 --moe-path $p \
          --out "$OUT/gpu-moe-t1-$p.json" || status=1
      done ;;
    host)
      bash scripts/device-run.sh dist/bench/gpu-host.js --out "$OUT/gpu-host.json" || status=1 ;;
    *) echo "device-suite: unknown step '$step' (tests, moe, decode, tiles, t1, host)" >&2; exit 2 ;;
  esac
done
exit $status
