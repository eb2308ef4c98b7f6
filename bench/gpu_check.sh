#!/usr/bin/env bash
# srd on one NVIDIA GPU, in one go (issue 17): install from wheels/ (bench/gpu_wheels.sh), then the table
# of srd against PyTorch (bench/gpu_bench.py), the daemon on 100 images against the network alone
# (bench/daemon_bench.py), and the engine, tiling, pipeline and ncnn-comparison tests with JAX on the GPU
# (ncnn runs on the CPU there). Every stage has its own time limit, so a slow one cannot eat the device
# lease; their limits add up to 8 minutes. Everything goes to $OUT (default ./gpu-out):
# summary.md (each stage's status and time, the table, the daemon's figures), check.log (all output),
# table.md, daemon.txt, tests.txt, env.txt.
#
#     bash bench/gpu_check.sh                 # on the GPU machine (the device tool's run; README, GPU)
#     bash bench/gpu_check.sh --smoke         # here, on the CPU: tiny sizes, shows the script runs
#     STAGES="bench daemon" bash bench/gpu_check.sh   # only some stages (install is implied on the GPU)
set -uo pipefail
cd "$(dirname "$0")/.."

SMOKE=0
[ "${1:-}" = "--smoke" ] && SMOKE=1
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
STAGES=${STAGES:-env install gpu bench daemon tests}
exec > >(tee -a "$OUT/check.log") 2>&1
SUMMARY=$OUT/summary.md
echo "# srd gpu_check $(date -u +%FT%TZ) smoke=$SMOKE" >"$SUMMARY"
echo >>"$SUMMARY"
echo "| stage | status | seconds | limit |" >>"$SUMMARY"
echo "|---|---|---|---|" >>"$SUMMARY"
export PYTHONUNBUFFERED=1

# stage NAME LIMIT COMMAND...: run COMMAND under a hard limit (timeout; killed 10 s after), log its status.
stage() {
    local name=$1 limit=$2
    shift 2
    case " $STAGES " in *" $name "*) ;; *) return 0 ;; esac
    echo "=== $name (limit ${limit} s): $*"
    local started=$SECONDS
    timeout -k 10 "$limit" "$@"
    local rc=$?
    local status=ok
    [ $rc -eq 124 ] || [ $rc -eq 137 ] && status="TIMED OUT"
    [ $rc -ne 0 ] && [ "$status" = ok ] && status="failed (rc $rc)"
    echo "=== $name: $status after $((SECONDS - started)) s"
    echo "| $name | $status | $((SECONDS - started)) | $limit |" >>"$SUMMARY"
}

if [ $SMOKE = 1 ]; then
    export JAX_PLATFORMS=cpu
    DEVICE=cpu
    BENCH=(--smoke)
    DAEMON=(--count 4 --size 48 --repeat 1 --device cpu --conv direct)
    # a quick subset: the full selection takes the CPU tens of minutes
    TESTS=(tests/unit/test_tiling.py tests/unit/test_torch_reference.py
        "tests/unit/test_engine_vs_ncnn.py::test_upconv7_matches_ncnn")
else
    DEVICE=gpu
    # each tile x batch shape for every model at both precisions; rows print as they come
    BENCH=(--shapes 512x1 256x4 512x4 --precisions float32 bfloat16)
    DAEMON=(--count 100 --size 512 --repeat 3 --device gpu)
    # the engine, tiling, pipeline and ncnn-comparison tests whose models wheels/models holds
    TESTS=(tests/unit/test_engine_vs_ncnn.py tests/unit/test_tiling.py tests/unit/test_pipeline.py
        tests/unit/test_precision.py tests/unit/test_torch_reference.py
        "tests/unit/test_families_vs_ncnn.py::test_realcugan_matches_ncnn")
fi

environment() {
    nvidia-smi -L || true
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv || true
    "$PY" -c "import sys; print(sys.version)"
    "$PY" -m pip list 2>/dev/null | grep -i -E '^(jax|jaxlib|jax-cuda|torch|numpy|pillow|ncnn|pydantic|setuptools) '
    gcc --version | head -1 || echo "no gcc: srd installs without its C extensions"
    nproc
}

install() {
    if [ $SMOKE = 1 ]; then
        echo "smoke: the cp312 wheels are for the GPU machine; using this environment's srd"
        ls wheels/*.whl && du -sh wheels
        return 0
    fi
    "$PY" -m pip install -q --no-index --no-deps --no-cache-dir wheels/*.whl || return 1
    # srd from this tree: the PNG filter extension is compiled (the daemon's encoder uses it), the
    # CPU-only Winograd kernel is left out (SRD_NATIVE_KERNEL=0): the GPU runs lax.conv.
    SRD_NATIVE_KERNEL=0 "$PY" -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir -e . ||
        return 1
    "$PY" -c "import srd, jax; print(srd.__file__, jax.devices())"
}

gpu_ready() {
    "$PY" - "$DEVICE" <<'EOF'
import sys
import jax
devices = jax.devices()
print("jax devices:", devices)
if sys.argv[1] == "gpu" and devices[0].platform != "gpu":
    sys.exit("JAX does not see the GPU: every later figure would be the CPU's")
EOF
}

# The model packages, trimmed to the files the check uses (bench/gpu_wheels.sh); the environment's own
# full packages on a smoke run.
[ $SMOKE = 1 ] || export PYTHONPATH=$PWD/wheels/models${PYTHONPATH:+:$PYTHONPATH}

stage env 20 environment >"$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
stage install 60 install
stage gpu 30 gpu_ready
stage bench 170 "$PY" bench/gpu_bench.py "${BENCH[@]}" --device "$DEVICE" --out "$OUT/table.md"
stage daemon 90 bash -c "set -o pipefail; $PY bench/daemon_bench.py ${DAEMON[*]} | tee '$OUT/daemon.txt'"
# Tests compare with ncnn and CPU references at float32 tolerances: full float32 (no TF32) on the GPU.
JAX_DEFAULT_MATMUL_PRECISION=highest stage tests 110 bash -c \
    "set -o pipefail; $PY -m pytest -q -p no:cacheprovider ${TESTS[*]} | tee '$OUT/tests.txt'"

{
    echo
    [ -f "$OUT/table.md" ] && cat "$OUT/table.md"
    echo
    [ -f "$OUT/daemon.txt" ] && sed 's/^/    /' "$OUT/daemon.txt"
    [ -f "$OUT/tests.txt" ] && tail -n 15 "$OUT/tests.txt" | sed 's/^/    /'
} >>"$SUMMARY"
echo "=== done in $SECONDS s; $SUMMARY"
cat "$SUMMARY"
