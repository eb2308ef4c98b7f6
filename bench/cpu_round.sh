#!/bin/bash
# One CPU measurement round, every figure docs/performance.md's per-machine tables are made of, into
# one folder: the machine (lscpu), srd against ncnn for the four shipped families at 256, 512, 333x517 and
# 1024 px in float32 and native-bf16, where a call's time goes (with srd's block plan and with plain
# L2-sized blocks), a 64 -> 64 and a 128 -> 256 layer with several block sizes, the daemon's throughput,
# and the PSNR cost of bfloat16. About 25 minutes on 2 cores (Intel Xeon).
#
#   bash bench/cpu_round.sh [OUT]      (OUT defaults to bench-round-<hostname>-<date>)
#
# Run from the repository root with the project installed (pip install -e '.[test,bench]'). Each step's
# output goes to its own .log; a step that fails is reported and the round goes on.
set -u
out=${1:-bench-round-$(hostname)-$(date +%Y%m%d-%H%M)}
mkdir -p "$out"
python=${PYTHON:-python}
models=(upconv7-art cunet realcugan-se realesr-animevideov3)

step() {
  local name=$1
  shift
  echo "== $name: $*"
  if ! "$@" >"$out/$name.log" 2>&1; then
    echo "   FAILED (see $out/$name.log)"
  fi
  tail -n 3 "$out/$name.log" | sed 's/^/   /'
}

step machine lscpu
grep -m1 "Model name" "$out/machine.log" | sed 's/^/   /'
step speed-f32 "$python" bench/speed.py --models "${models[@]}" --sizes 256 512 333x517 --big --repeat 3
step speed-bf16 "$python" bench/speed.py --models "${models[@]}" --sizes 256 512 333x517 --big --repeat 3 \
  --conv native-bf16
step profile "$python" bench/profile_layers.py --sizes 256 512 --conv native native-bf16
# The block plan's traffic model (wide and grouped blocks, srd/_native/winograd_ffi.cc) against plain
# L2-sized blocks: compare this log's native rows with profile.log's.
step profile-l2plan env SRD_WINOGRAD_PLAN=l2 "$python" bench/profile_layers.py --sizes 256 512 --conv native
step layer "$python" bench/winograd_micro.py --size 516 --cin 64 --cout 64 --blocks 6 12 24 36
step layer-wide "$python" bench/winograd_micro.py --size 260 --cin 128 --cout 256 --blocks 12 24 48 96
step daemon-f32 "$python" bench/daemon_bench.py --count 40
step daemon-bf16 "$python" bench/daemon_bench.py --count 40 --conv native-bf16
step quality "$python" bench/quality.py --models cunet upconv7-art upconv7-photo --scales 2
echo "logs in $out/"
