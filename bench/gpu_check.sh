#!/usr/bin/env bash
# srd on one NVIDIA GPU, in one go (issue 17): install from wheels/ (bench/gpu_wheels.sh), then the table
# of srd against PyTorch (bench/gpu_bench.py), the daemon on 100 images against the network alone
# (bench/daemon_bench.py), and the engine, tiling, pipeline and ncnn-comparison tests with JAX on the GPU
# (ncnn runs on the CPU there). Every stage runs under its own time limit (timeout, which kills the
# stage's whole process group), so a slow one cannot eat the device lease; the limits add up to 8
# minutes. Everything goes to $OUT (default ./gpu-out): summary.md (each stage's status and time, the
# table, the daemon's figures, the tests' last lines), check.log (all output), table.md, daemon.txt,
# tests.txt, env.txt.
#
#     bash bench/gpu_check.sh                 # on the GPU machine (the device tool's run; docs/performance.md, GPU)
#     PYTHON=.venv/bin/python bash bench/gpu_check.sh --smoke   # on a CPU: tiny sizes, shows it runs
#     STAGES="gpu bench" bash bench/gpu_check.sh   # only some stages (a rerun on a warm machine)
set -uo pipefail
SCRIPT=$(realpath "$0")
cd "$(dirname "$SCRIPT")/.."

SMOKE=${SRD_CHECK_SMOKE:-0}
[ "${1:-}" = "--smoke" ] && SMOKE=1
export OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
PY=${PYTHON:-python3} # the GPU machine's python3 holds JAX and PyTorch; here, e.g. PYTHON=.venv/bin/python
export PYTHONUNBUFFERED=1
# The stage limits are the GPU machine's; a smoke run on a small, busy CPU gets LIMIT_SCALE times them.
LIMIT_SCALE=${LIMIT_SCALE:-$([ "$SMOKE" = 1 ] && echo 6 || echo 1)}

if [ "$SMOKE" = 1 ]; then
    export JAX_PLATFORMS=cpu
    DEVICE=cpu
    BENCH=(--smoke)
    DAEMON=(--count 4 --size 48 --repeat 1 --device cpu --conv direct)
    # a quick subset: the full selection takes this project's 2-core machines tens of minutes
    TESTS=(tests/unit/test_tiling.py tests/unit/test_torch_reference.py
        "tests/unit/test_engine_vs_ncnn.py::test_upconv7_matches_ncnn")
else
    DEVICE=gpu
    # each tile x batch shape for every model at both precisions; rows print as they are measured
    BENCH=(--shapes 512x1 256x4 512x4 --precisions float32 bfloat16)
    DAEMON=(--count 100 --size 512 --repeat 3 --device gpu)
    # the engine, tiling, pipeline and ncnn-comparison tests whose model files wheels/models holds
    FAMILIES=tests/unit/test_families_vs_ncnn.py
    TESTS=(tests/unit/test_engine_vs_ncnn.py tests/unit/test_torch_reference.py tests/unit/test_tiling.py
        tests/unit/test_precision.py tests/unit/test_pipeline.py
        "$FAMILIES::test_rgba_equals_the_reference[realcugan-se-realcugan-REALCUGAN_SE_UP2X_CONSERVATIVE-2-48]"
        "$FAMILIES::test_realcugan_in_one_tile_equals_the_reference[realcugan-se-SE-2--1]"
        "$FAMILIES::test_realcugan_across_tiles_with_syncgap_equals_the_reference[2-3]"
        "$FAMILIES::test_realcugan_across_tiles_with_syncgap_equals_the_reference[2-0]"
        "$FAMILIES::test_realcugan_syncgap_3_under_65_pixels_falls_back_to_mode_2"
        "$FAMILIES::test_23_block_rrdb_equals_the_reference[realesrgan-x4plus-realesrgan-REALESRGAN_X4PLUS_UP4X]"
        --deselect "tests/unit/test_engine_vs_ncnn.py::test_cunet_matches_ncnn_at_its_cpu_tile[1-1]")
    # the model packages, trimmed to the files the check uses (bench/gpu_wheels.sh)
    export PYTHONPATH=$PWD/wheels/models${PYTHONPATH:+:$PYTHONPATH}
fi

environment() {
    nvidia-smi -L || true
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv || true
    "$PY" -c "import sys; print(sys.version)"
    "$PY" -m pip list 2>/dev/null | grep -i -E '^(jax|jaxlib|jax-cuda\S*|torch|numpy|pillow|ncnn|pydantic|setuptools) '
    gcc --version | head -1 || echo "no gcc: srd installs without its C extensions"
    echo "cpus: $(nproc)"
}

install() {
    if [ "$SMOKE" = 1 ]; then
        echo "smoke: the cp312 wheels are for the GPU machine; this environment's srd runs"
        ls wheels/*.whl && du -sh wheels
        return 0
    fi
    "$PY" -m pip install -q --no-index --no-deps --no-cache-dir wheels/*.whl || return 1
    # srd from this tree: the PNG filter extension is compiled (the daemon's encoder uses it); the
    # CPU-only Winograd kernel is left out (SRD_NATIVE_KERNEL=0): the GPU runs lax.conv.
    SRD_NATIVE_KERNEL=0 "$PY" -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir -e . ||
        return 1
    "$PY" -c "import srd; print(srd.__file__)"
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

bench() {
    "$PY" bench/gpu_bench.py "${BENCH[@]}" --device "$DEVICE" --out "$OUT/table.md"
}

daemon() {
    "$PY" bench/daemon_bench.py "${DAEMON[@]}" | tee "$OUT/daemon.txt"
}

tests() {
    # The tests compare with ncnn and CPU references at float32 tolerances: full float32 (no TF32).
    # -v: one line per test as it finishes, so a run cut short still says what passed.
    JAX_DEFAULT_MATMUL_PRECISION=highest "$PY" -m pytest -v --tb=short -p no:cacheprovider "${TESTS[@]}" |
        tee "$OUT/tests.txt"
}

if [ "${1:-}" = "--stage" ]; then # a stage, run by `stage` below under its time limit
    "$2"
    exit
fi

STAGES=${STAGES:-env install gpu bench daemon tests}
exec > >(tee -a "$OUT/check.log") 2>&1
SUMMARY=$OUT/summary.md
{
    echo "# srd gpu_check $(date -u +%FT%TZ) smoke=$SMOKE"
    echo
    echo "| stage | status | seconds | limit |"
    echo "|---|---|---|---|"
} >"$SUMMARY"

# stage NAME LIMIT FUNCTION: run FUNCTION of this script under a hard limit, note its status and time.
stage() {
    local name=$1 limit=$(($2 * LIMIT_SCALE)) function=$3
    case " $STAGES " in *" $name "*) ;; *) return 0 ;; esac
    echo "=== $name (limit ${limit} s)"
    local started=$SECONDS rc status=ok
    SRD_CHECK_SMOKE=$SMOKE timeout -k 10 "$limit" bash "$SCRIPT" --stage "$function"
    rc=$?
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
        status="TIMED OUT"
    elif [ $rc -ne 0 ]; then
        status="failed (rc $rc)"
    fi
    echo "=== $name: $status after $((SECONDS - started)) s"
    echo "| $name | $status | $((SECONDS - started)) | $limit |" >>"$SUMMARY"
}

stage env 20 environment | tee "$OUT/env.txt"
stage install 60 install
stage gpu 30 gpu_ready
stage bench 150 bench
stage daemon 80 daemon
stage tests 140 tests

{
    echo
    [ -f "$OUT/table.md" ] && cat "$OUT/table.md"
    echo
    [ -f "$OUT/daemon.txt" ] && sed 's/^/    /' "$OUT/daemon.txt"
    echo
    [ -f "$OUT/tests.txt" ] && tail -n 25 "$OUT/tests.txt" | sed 's/^/    /'
} >>"$SUMMARY"
echo "=== done in $SECONDS s"
cat "$SUMMARY"
sleep 1 # let tee write the last lines to check.log
