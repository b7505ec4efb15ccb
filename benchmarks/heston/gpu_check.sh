#!/usr/bin/env bash
# One bounded check of the Heston CUDA backend on a GPU machine (issue 20).
#
#   bash benchmarks/heston/gpu_check.sh            # from the repository root
#
# Steps (each logged to $OUT/gpu_check.log under a '=== step' line, its exit status to
# $OUT/summary.txt: few files, since a device machine sends few back; a failing step does
# not stop the others; the script exits 1 if any step failed), the GPU's own
# figures first so that a short lease gets them:
#   env          python, platform, git revision
#   nvidia_smi   device, driver and CUDA version (nvidia-smi)
#   install      only if argus_core / argus_gpu_heston do not import: wheels carried in
#                ./.whl (no network on the device machine) installed into a scratch
#                folder, and the repository's sources put on PYTHONPATH; else
#                pip install -e the core + argus-gpu-heston[test]
#   cupy         import cupy, else pip install $CUPY_PKG (default: cupy-cuda13x or
#                cupy-cuda12x, from the driver's CUDA version)
#   cupy_runtime CuPy's CUDA runtime/driver versions and device count
#   bench        benchmarks/heston/bench_heston.py --require-gpu, bounded sizes
#   variants     benchmarks/heston/gpu_variants.py: NVRTC options, block sizes, QE forms
#   cli          `argus heston price` and `argus heston pop` with --backend cuda
#   pytest_cuda  plugins/argus-gpu-heston/tests/test_heston_cuda.py (fails if the device
#                tests were skipped: "no CUDA device")
#   pytest_all   the plugin's whole test suite with the GPU present (backend "auto" is
#                CUDA there), 8 workers
#
# Environment: OUT (default ./gpu_check_out), PYTHON (default python3, else python),
# CUPY_PKG, BENCH_ARGS (extra arguments for bench_heston.py, e.g. "--backends cuda,cpu"),
# STEP_TIMEOUT (seconds per step, default 240), ONLY (space-separated step names to run;
# default all).
set -u

OUT="${OUT:-./gpu_check_out}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT" || exit 2
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
    if command -v python3 >/dev/null 2>&1; then PY=python3; else PY=python; fi
fi
CUPY_PKG="${CUPY_PKG:-}"
ONLY="${ONLY:-}"
STEP_TIMEOUT="${STEP_TIMEOUT:-240}"
BENCH_ARGS="${BENCH_ARGS:-}"
export OUT ROOT PY CUPY_PKG BENCH_ARGS
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"
: > "$OUT/gpu_check.log"
FAILED=0
START=$(date +%s)

# step NAME CMD...: run CMD (bounded by STEP_TIMEOUT) into the log and record its status.
step() {
    local name="$1"; shift
    local t0 rc
    t0=$(date +%s)
    local log="$OUT/.step.log"
    echo "=== $name: $*" > "$log"
    timeout "$STEP_TIMEOUT" bash -c '"$@"' _ "$@" >> "$log" 2>&1
    rc=$?
    [ "$rc" -eq 124 ] && echo "$name: timed out after ${STEP_TIMEOUT}s" >> "$log"
    tail -n 15 "$log" | sed 's/^/    /'
    cat "$log" >> "$OUT/gpu_check.log" && rm -f "$log"
    if [ "$rc" -eq 0 ]; then
        printf '%-13s ok     (%ss)\n' "$name" "$(( $(date +%s) - t0 ))" | tee -a "$SUMMARY"
    else
        FAILED=1
        printf '%-13s FAILED exit %s (%ss): see gpu_check.log\n' "$name" "$rc" \
            "$(( $(date +%s) - t0 ))" | tee -a "$SUMMARY"
    fi
    return 0
}

pipi() {
    "$PY" -m pip install --disable-pip-version-check --timeout 20 --retries 1 "$@"
}

env_info() {
    date -u
    uname -a
    "$PY" --version
    echo "python: $(command -v "$PY")"
    git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo "(not a git checkout)"
    nproc
    "$PY" -c "import pyopencl as cl; print('opencl:', [(p.name, [d.name for d in p.get_devices()]) for p in cl.get_platforms()])" 2>&1 | tail -1
}

nvidia_smi() {
    if ! command -v nvidia-smi >/dev/null 2>&1; then
        echo "nvidia-smi not found: no NVIDIA driver on this machine (GPU-specific step)"
        return 127
    fi
    nvidia-smi || return $?
    nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv
}

install_argus() {
    if "$PY" -c "import argus_core, argus_gpu_heston, pytest" 2>/dev/null; then
        echo "argus_core and argus_gpu_heston importable (PYTHONPATH=${PYTHONPATH:-})"
    else
        echo "installing the core and argus-gpu-heston[test] (editable) from PyPI"
        pipi -e ".[test]" -e "plugins/argus-gpu-heston[test]" || {
            rc=$?
            echo "pip install failed (exit $rc): no network to PyPI? Carry the missing wheels"
            echo "in ./.whl (benchmarks/heston/README.md says which) and rerun."
            return "$rc"
        }
    fi
    "$PY" -c "import argus_gpu_heston, numba; print('argus_gpu_heston ok, numba', numba.__version__)"
}

# Without network: carried wheels into a scratch folder, the sources on PYTHONPATH (run in
# this shell, not a step, so that every later step sees the path).
use_sources() {
    "$PY" -c "import argus_core, argus_gpu_heston" 2>/dev/null && return 0
    local site=/tmp/argus_gpu_site
    if ls "$ROOT"/.whl/*.whl >/dev/null 2>&1; then
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target "$site" "$ROOT"/.whl/*.whl >> "$OUT/gpu_check.log" 2>&1 \
            || echo "installing the carried wheels failed: see gpu_check.log"
    fi
    export PYTHONPATH="$ROOT:$ROOT/plugins/argus-gpu-heston/src:$site${PYTHONPATH:+:$PYTHONPATH}"
}

# The NVIDIA driver's OpenCL library, registered for pyopencl's ICD loader where the
# machine has the library but no /etc/OpenCL/vendors entry (the OpenCL tests then run on
# the GPU too).
register_nvidia_opencl() {
    ls /etc/OpenCL/vendors/*.icd >/dev/null 2>&1 && return 0
    local lib
    lib=$(ldconfig -p 2>/dev/null | awk '/libnvidia-opencl\.so\.1/{print $NF; exit}')
    [ -z "$lib" ] && lib=$(ls /usr/local/nvidia/lib64/libnvidia-opencl.so.1 2>/dev/null)
    [ -z "$lib" ] && return 0
    mkdir -p /tmp/argus_ocl_vendors && echo "$lib" > /tmp/argus_ocl_vendors/nvidia.icd
    export OCL_ICD_VENDORS=/tmp/argus_ocl_vendors
}

cupy_check() {
    if "$PY" -c "import cupy; print('cupy', cupy.__version__, 'already installed')"; then
        return 0
    fi
    if [ -z "$CUPY_PKG" ]; then
        case "$(nvidia-smi 2>/dev/null | grep -o 'CUDA Version: [0-9]*')" in
            *13) CUPY_PKG=cupy-cuda13x ;;
            *) CUPY_PKG=cupy-cuda12x ;;
        esac
    fi
    echo "cupy is not importable: pip install $CUPY_PKG"
    pipi "$CUPY_PKG" || {
        rc=$?
        echo "pip install $CUPY_PKG failed (exit $rc): no network to PyPI? The CUDA steps need"
        echo "CuPy; install $CUPY_PKG (wheel matching the driver's CUDA major version) and rerun."
        return "$rc"
    }
    "$PY" -c "import cupy; print('cupy', cupy.__version__, 'installed')"
}

cupy_runtime() {
    "$PY" - <<'EOF'
import sys
try:
    import cupy
except ImportError as exc:
    sys.exit(f"cannot import cupy ({exc}): GPU-specific step, needs CuPy and a CUDA driver")
rt = cupy.cuda.runtime
print("cupy", cupy.__version__)
print("cuda runtime version", rt.runtimeGetVersion())
try:
    print("cuda driver version", rt.driverGetVersion())
    n = rt.getDeviceCount()
except Exception as exc:  # no driver, no device
    sys.exit(f"no usable CUDA driver or device: {exc}")
print("devices", n)
for i in range(n):
    p = rt.getDeviceProperties(i)
    name = p["name"].decode() if isinstance(p["name"], bytes) else p["name"]
    print(f"  {i}: {name}, sm_{p['major']}{p['minor']}, {p['totalGlobalMem'] / 2**30:.1f} GiB")
if n == 0:
    sys.exit("CuPy sees no CUDA device")
EOF
}

pytest_cuda() {
    local rc
    "$PY" -m pytest plugins/argus-gpu-heston/tests/test_heston_cuda.py -q -n 0 -rs \
        -p no:cacheprovider 2>&1
    rc=$?
    if [ "$rc" -eq 0 ] && grep -q "no CUDA device" "$OUT/.step.log"; then
        echo "the device tests were SKIPPED (no CUDA device seen by CuPy): GPU-specific failure"
        return 3
    fi
    return "$rc"
}

pytest_all() {
    "$PY" -m pytest plugins/argus-gpu-heston/tests -q -n 8 -rs -p no:cacheprovider 2>&1
}

cli() {
    # what a user sees: one Monte Carlo price and one probability of profit on the GPU
    "$PY" -m argus_core.cli heston price --s0 100 --strike 100 --t 1 --v0 0.0175 \
        --kappa 1.5768 --theta 0.0398 --sigma 0.5751 --rho -0.5711 --method mc \
        --paths 1000000 --steps 252 --backend cuda || return $?
    "$PY" -m argus_core.cli heston pop --s0 100 --t 0.08 --v0 0.04 --kappa 2 --theta 0.05 \
        --sigma 0.6 --rho -0.7 --put-spread 95:90 --premium 1.1 --backend cuda
}

variants() {
    "$PY" benchmarks/heston/gpu_variants.py --repeat 5 --cpu-ref .whl/cpu_paths.npz
}

bench() {
    # bounded: GPU rows 2^20 x 252, variance table 2^16 paths, best of 3 (a few seconds on
    # a GPU); the CPU backend is left out unless BENCH_ARGS names it (cold Numba compiles).
    # shellcheck disable=SC2086
    "$PY" benchmarks/heston/bench_heston.py --require-gpu --quick --repeat 3 \
        --gpu-paths 1048576 --gpu-steps 252 --backends cuda \
        --json "$OUT/bench_heston.json" $BENCH_ARGS
}

export -f pipi env_info nvidia_smi install_argus cupy_check cupy_runtime pytest_cuda \
    pytest_all variants bench cli
use_sources
register_nvidia_opencl
for name in env nvidia_smi install cupy cupy_runtime bench variants cli pytest_cuda pytest_all; do
    if [ -n "$ONLY" ] && [[ " $ONLY " != *" $name "* ]]; then continue; fi
    case "$name" in
        env) step env env_info ;;
        install) step install install_argus ;;
        cupy) step cupy cupy_check ;;
        *) step "$name" "$name" ;;
    esac
done

echo "total $(( $(date +%s) - START ))s; logs in $OUT" | tee -a "$SUMMARY"
if [ "$FAILED" -ne 0 ]; then
    echo "gpu_check: FAILED (see $SUMMARY)" | tee -a "$SUMMARY"
    exit 1
fi
echo "gpu_check: all steps passed" | tee -a "$SUMMARY"
exit 0
