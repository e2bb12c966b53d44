#!/usr/bin/env bash
# Verify gpunet's CUDA path on a machine with an NVIDIA GPU, in tiers that fit a short lease.
#
#   scripts/gpu_verify.sh [--dry-run] --tier N[,N...] OUTDIR
#
# The GPU machine this is written for (see docs/performance.md, "Verifying on a GPU") is
# lent for 15 minutes in all, start-up and idle time included, at most 10 minutes a
# command, and only the files under OUTDIR come back: at most 8, at most 2 folders deep.
# So the run is cut into tiers, each time-boxed, and every step appends its line to
# OUTDIR/summary.txt the moment it ends: a run killed at its limit still returns what it
# finished. The plan: tiers 1 and 2 in one call (about 7 minutes with the start), fix on
# the CPU machine, rerun what failed in the time left; tier 3 when time remains.
#
#   tier 1 (at most 170 s): the headline
#     install     pip install --no-deps --no-build-isolation --no-index -e . (no network)
#     environment nvidia-smi, versions, the tools on the PATH, gpunet info
#     resources   the fused kernel as compiled and loaded here: registers, local memory,
#                 dynamic shared memory each configuration asks for, the opt-in limit,
#                 SM count (scripts/gpu_resources.py -> resources.json)
#     check       gpunet check --device cuda --json check.json
#     targets     python scripts/gpu_targets.py targets.json: the fused book epoch, the
#                 NumPy engine, PyTorch CUDA, K = 1, 10, 100 networks in one launch
#     cuda-tests  the CUDA tests only (pytest -k cuda), none may skip for want of a GPU
#   tier 2 (at most 230 s): the suite and the sanitizer
#     suite       the whole suite, less tests/test_installed.py (it needs PyPI)
#     memcheck-fused, racecheck-fused
#                 compute-sanitizer on a short fused training run (CuPy's memory pool
#                 off, so memcheck sees every allocation's bounds)
#   tier 3 (at most 280 s): what is left
#     bench       gpunet bench, GPU rows only -> bench.json
#     ncu-fused   Nsight Compute: the fused kernel's warp stall reasons and occupancy
#     memcheck-eager, racecheck-eager
#
# OUTDIR holds at most these 8 files, flat: summary.txt (a line per step as it ends,
# the targets' and resources' verdicts, a verdict per tier), run.log (every step's
# output), resources.json, check.json, targets.json, pytest.log, tools.log (sanitizer and
# ncu), bench.json. `python scripts/gpu_import.py OUTDIR` on the CPU machine turns them
# into benchmarks/gpu-<device>-<date>.json and the GPU table of docs/performance.md.
#
# --dry-run: on a machine without a GPU (CI: tests/test_gpu_verify_script.py), run every
# step that needs no CUDA as it is (environment, resources from ptxas alone), every other
# step in its nearest CPU form (check on the CPU, targets on 200 images, the CUDA tests
# collected only, install as pip --dry-run, sanitizer and ncu as `--version`), and check
# the files under OUTDIR like a real run. A step that fails only for want of a GPU is
# noted, not failed.
#
# Environment: PYTHON (default python3), GPU_VERIFY_WORKERS (pytest-xdist workers, default
# 8 where xdist is installed), GPU_VERIFY_SECONDS_1, _2, _3 (the tiers' time; a step
# that no longer fits is SKIPPED, which fails the tier). Exit status: 0 when every step passed, 1 otherwise, 2 for
# bad usage or a missing tool: before any step the script checks for timeout, Python
# >= 3.10 with pytest and NumPy, and (not in --dry-run) nvidia-smi and CuPy, and refuses
# to start with one line naming what to install. A step passes only on its command's
# exit status 0: a missing command is a FAIL, and "no test skipped for want of a GPU"
# needs pytest's own closing line.

set -u
set -o pipefail

usage() {
    echo "usage: scripts/gpu_verify.sh [--dry-run] --tier N[,N...] OUTDIR   (N in 1, 2, 3)" >&2
    exit 2
}
DRY=0 TIERS="" OUTARG=""
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY=1 ;;
        --tier) [ $# -ge 2 ] || usage; TIERS="$TIERS,$2"; shift ;;
        --tier=*) TIERS="$TIERS,${1#--tier=}" ;;
        -*) usage ;;
        *) [ -z "$OUTARG" ] || usage; OUTARG=$1 ;;
    esac
    shift
done
[ -n "$OUTARG" ] && [ -n "$TIERS" ] || usage
TIER_LIST=()
for t in ${TIERS//,/ }; do
    case "$t" in 1|2|3) TIER_LIST+=("$t") ;; *) usage ;; esac
done

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$OUTARG" || { echo "gpu_verify: cannot create $OUTARG" >&2; exit 2; }
OUT="$(cd "$OUTARG" && pwd)"
cd "$ROOT" || exit 2

PY="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1

# refuse NAME FIX: what is missing, in one line, before any step runs (exit 2). A step
# whose tool is missing could only fail, or worse, look like it passed.
refuse() { echo "gpu_verify: cannot start: $1; $2" >&2; exit 2; }
preflight() {
    command -v timeout >/dev/null 2>&1 \
        || refuse "the timeout command is missing" "install coreutils"
    command -v "$PY" >/dev/null 2>&1 \
        || refuse "the Python '$PY' is not found" "install Python 3, or set PYTHON to one"
    "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' >/dev/null 2>&1 \
        || refuse "'$PY' is not a Python >= 3.10" "set PYTHON to one"
    "$PY" -c 'import pytest' >/dev/null 2>&1 \
        || refuse "pytest is not installed for $PY" "$PY -m pip install pytest (or the test extra)"
    "$PY" -c 'import numpy' >/dev/null 2>&1 \
        || refuse "NumPy is not installed for $PY" "$PY -m pip install numpy"
    [ $DRY -eq 1 ] && return 0  # the dry run needs no GPU, no driver and no CuPy
    command -v nvidia-smi >/dev/null 2>&1 \
        || refuse "nvidia-smi is not on the PATH (no NVIDIA driver here?)" \
                  "install the NVIDIA driver, or run with --dry-run on a machine without a GPU"
    "$PY" -c 'import cupy' >/dev/null 2>&1 \
        || refuse "CuPy is not importable by $PY" \
                  "$PY -m pip install \"cupy-cuda13x[ctk]>=14.2,<14.3\" (driver for CUDA 13) or cupy-cuda12x (CUDA 12)"
}
preflight
SUMMARY="$OUT/summary.txt" RUN_LOG="$OUT/run.log" PYTEST_LOG="$OUT/pytest.log" TOOLS_LOG="$OUT/tools.log"
#: the only files a run may leave in OUTDIR (the device tool returns at most 8)
ALLOWED="summary.txt run.log resources.json check.json targets.json pytest.log tools.log bench.json"
touch "$SUMMARY" "$RUN_LOG"
FAILED=0 TIER="" TIER_START=0 TIER_BUDGET=0 TIER_FAILED=""

log() { echo "[$(date -u +%H:%M:%S)] $*" >>"$RUN_LOG"; }

# line TIER NAME STATUS SECONDS NOTE: one line of summary.txt, written at once.
line() { printf 'tier%-2s %-18s %-8s %5ss  %s\n' "$1" "$2" "$3" "$4" "$5" >>"$SUMMARY"; }

record() {  # record NAME STATUS NOTE: a verdict that is not a command's exit status
    line "$TIER" "$1" "$2" 0 "$3"
    log "$2 $1: $3"
    if [ "$2" != PASS ]; then FAILED=1; TIER_FAILED="$TIER_FAILED $1"; fi  # SKIPPED too
}

# step NAME CAP LOGFILE [--gpu] CMD...: run CMD with a timeout of min(CAP, the tier's time
# left), its output appended to LOGFILE (and its tail to run.log), and its line to the
# summary at once. --gpu: in a dry run, a failure is the missing GPU's, noted as NOGPU.
step() {
    local name=$1 cap=$2 logfile=$3 gpu=0
    shift 3
    if [ "${1:-}" = --gpu ]; then gpu=1; shift; fi
    local left=$((TIER_BUDGET - ($(date +%s) - TIER_START)))
    local limit=$((cap < left ? cap : left))
    if [ "$limit" -lt 10 ]; then
        record "$name" SKIPPED "out of time (tier $TIER has ${TIER_BUDGET}s)"
        return 1
    fi
    log "----- $name (at most ${limit}s): $*"
    echo "===== tier $TIER $name: $*" >>"$logfile"
    local t0; t0=$(date +%s)
    timeout --kill-after=5 "$limit" "$@" >>"$logfile" 2>&1
    local rc=$?
    local dt=$(($(date +%s) - t0)) status=PASS note="exit $rc"
    [ "$logfile" != "$RUN_LOG" ] && tail -n 15 "$logfile" >>"$RUN_LOG"
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
        status=FAIL note="timed out after ${limit}s"
    elif [ $rc -ne 0 ]; then
        status=FAIL
    fi
    if [ $rc -eq 126 ] || [ $rc -eq 127 ]; then
        note="exit $rc: $1 could not be run (missing or not executable)"
    fi
    if [ "$status" = FAIL ] && [ $DRY -eq 1 ] && [ $gpu -eq 1 ]; then
        status=NOGPU note="$note (dry run: needs a GPU)"
    fi
    line "$TIER" "$name" "$status" "$dt" "$note"
    log "$status $name (${dt}s, $note)"
    if [ "$status" = FAIL ]; then FAILED=1; TIER_FAILED="$TIER_FAILED $name"; fi
    [ "$status" = PASS ]
}

# last_section FILE MARKER: FILE from the last line holding MARKER on (a rerun into
# the same OUTDIR appends: an earlier run's lines must never speak for this one).
last_section() {
    awk -v m="$2" 'index($0, m) > 0 { buf = "" } { buf = buf $0 "\n" } END { printf "%s", buf }' \
        "$1" 2>/dev/null
}
# verdicts STEP PATTERN [N]: the outcome lines (PASS/FAIL ...) step STEP printed this
# run, copied into the summary.
verdicts() {
    last_section "$RUN_LOG" "----- $1 " | grep -E "^(PASS|FAIL) $2" | tail -n "${3:-20}" \
        | sed 's/^/        /' >>"$SUMMARY"
}

sanitize() {  # sanitize TOOL ENGINE LIMIT: compute-sanitizer on a short training run
    local limit=$3
    [ $DRY -eq 1 ] && { step "$1-$2" 30 "$TOOLS_LOG" --gpu compute-sanitizer --version; return; }
    if ! command -v compute-sanitizer >/dev/null 2>&1; then
        record "$1-$2" FAIL "compute-sanitizer is not on the PATH"
        return
    fi
    step "$1-$2" 75 "$TOOLS_LOG" compute-sanitizer --tool "$1" --error-exitcode 99 \
        "$PY" -c 'import sys, cupy; cupy.cuda.set_allocator(None); from gpunet.cli import main; sys.exit(main(sys.argv[1:]))' \
        train --device cuda --engine "$2" --limit "$limit" --epochs 1 --seed 1 --quiet
}

check_outdir() {  # the files under OUTDIR: flat, known names, at most 8
    local names count unknown=""
    names=$(cd "$OUT" && find . -mindepth 1 | sed 's|^\./||' | sort)
    count=$(echo "$names" | grep -c . || true)
    for n in $names; do
        case " $ALLOWED " in *" $n "*) ;; *) unknown="$unknown $n" ;; esac
    done
    if [ -n "$unknown" ] || [ "$count" -gt 8 ]; then
        record outdir FAIL "$count entries; not allowed:${unknown:- none}"
    else
        record outdir PASS "$count files: $(echo $names)"
    fi
}

GPU_NAME=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1)
GPU_NAME=${GPU_NAME:-no GPU}
XDIST=()
if "$PY" -c 'import xdist' 2>/dev/null; then XDIST=(-n "${GPU_VERIFY_WORKERS:-8}" --dist loadfile); fi

# install_gpunet [--dry-run]: gpunet into $PY's environment with no network. pip first
# (editable, no build isolation: the image's setuptools and wheel build it); if pip
# cannot, a folder of links (gpunet/, its backends/ at gpunet/backends) named by a .pth
# file in site-packages: `import gpunet` and `python -m gpunet` work from any folder.
# --dry-run: pip --dry-run (a failure is noted), and the links made and imported in a
# temporary folder, site-packages untouched.
install_gpunet() {
    local dry=${1:-} links
    if [ "$dry" = --dry-run ]; then
        "$PY" -m pip install --dry-run --no-deps --no-build-isolation --no-index -e . \
            || echo "note: pip could not prepare gpunet here (the links below stand in)"
    elif "$PY" -m pip install --no-deps --no-build-isolation --no-index -e .; then
        "$PY" -c 'import gpunet.backends.fused_sgd' && return 0
    fi
    echo "installing gpunet as links to the checkout $ROOT"
    links=$(mktemp -d) || return 1
    mkdir "$links/gpunet" && ln -s "$ROOT"/gpunet/* "$links/gpunet/" \
        && ln -s "$ROOT/backends" "$links/gpunet/backends" || return 1
    if [ "$dry" = --dry-run ]; then
        (cd / && PYTHONPATH="$links" "$PY" -c 'import gpunet.backends.fused_sgd as f; print("gpunet from", f.__file__)')
        local rc=$?
        rm -rf "$links"
        return $rc
    fi
    "$PY" -c 'import site, sys; print(site.getsitepackages()[0] + "/gpunet-checkout.pth")' \
        | { read -r pth && echo "$links" >"$pth" && echo "wrote $pth"; } || return 1
    (cd / && "$PY" -c 'import gpunet.backends.fused_sgd as f; print("gpunet from", f.__file__)')
}
export -f install_gpunet
export PY ROOT

tier1() {
    step install 60 "$RUN_LOG" bash -c "install_gpunet $([ $DRY -eq 1 ] && echo --dry-run)"
    step environment 40 "$RUN_LOG" bash -c "nvidia-smi || echo 'nvidia-smi: no GPU here'; \
        $PY -c 'import sys, numpy; print(sys.version); print(\"numpy\", numpy.__version__)'; \
        $PY -c 'import cupy; print(\"cupy\", cupy.__version__)' || true; \
        $PY -c 'import torch; print(\"torch\", torch.__version__, torch.version.cuda, torch.cuda.is_available())' || true; \
        for t in nvcc compute-sanitizer ncu; do printf '%s: ' \$t; command -v \$t || echo missing; done; \
        $PY -m gpunet info"
    local resources=()
    [ $DRY -eq 1 ] && resources=(--no-device)
    step resources 90 "$RUN_LOG" "$PY" scripts/gpu_resources.py "$OUT/resources.json" "${resources[@]}"
    verdicts resources resources 2
    local device=cuda
    [ $DRY -eq 1 ] && device=cpu
    step check 60 "$RUN_LOG" "$PY" -m gpunet check --device "$device" --json "$OUT/check.json"
    local limit=()
    [ $DRY -eq 1 ] && limit=(--limit 200)
    step targets 100 "$RUN_LOG" --gpu "$PY" "$ROOT/scripts/gpu_targets.py" "$OUT/targets.json" "${limit[@]}"
    verdicts targets "(fused|K = 100)" 4
    if [ $DRY -eq 1 ]; then
        step cuda-tests 60 "$PYTEST_LOG" "$PY" -m pytest -q -p no:cacheprovider --collect-only -k cuda \
            --ignore=tests/test_installed.py
    else
        step cuda-tests 100 "$PYTEST_LOG" "$PY" -m pytest -q -rs -p no:cacheprovider "${XDIST[@]}" \
            -k cuda --ignore=tests/test_installed.py
        no_gpu_skips cuda-tests
    fi
}

no_gpu_skips() {  # the CUDA tests must have run: a skip naming the GPU means they did not
    local skips section
    section=$(last_section "$PYTEST_LOG" "===== tier $TIER $1:")
    skips=$(echo "$section" | grep -c "no GPU" || true)
    # pytest's closing line ("3 passed, 1 skipped in 2.1s") or it ran nothing at all
    if ! echo "$section" | grep -qE "[0-9]+ (passed|failed)"; then
        record "$1-ran" FAIL "pytest ran no test (no 'N passed' line in pytest.log)"
    elif [ "$skips" -gt 0 ]; then
        record "$1-ran" FAIL "$skips skip lines say no GPU: $(echo "$section" | grep -m1 'no GPU' | cut -c1-120)"
    else
        record "$1-ran" PASS "no test skipped for want of a GPU"
    fi
}

tier2() {
    if [ $DRY -eq 1 ]; then
        step suite 60 "$PYTEST_LOG" "$PY" -m pytest -q -p no:cacheprovider --collect-only \
            --ignore=tests/test_installed.py
    else
        step suite 170 "$PYTEST_LOG" "$PY" -m pytest -q -rs -p no:cacheprovider "${XDIST[@]}" \
            --ignore=tests/test_installed.py
        no_gpu_skips suite
    fi
    sanitize memcheck fused 300
    sanitize racecheck fused 60
}

tier3() {
    local impls tmp
    impls=$("$PY" -c 'from gpunet.bench import IMPLEMENTATIONS as I; print(",".join(i for i in I if "cupy" in i or "cuda" in i))' 2>>"$RUN_LOG")
    tmp=$(mktemp -d)  # outside OUTDIR: a killed run leaves no extra files there
    local quick=()
    [ $DRY -eq 1 ] && quick=(--quick --configs book)
    if step bench 200 "$RUN_LOG" --gpu "$PY" -m gpunet bench --impl "$impls" --out "$tmp" --stamp bench "${quick[@]}"; then
        cat "$tmp/bench.md" >>"$RUN_LOG" 2>/dev/null
    fi
    [ -s "$tmp/bench.json" ] && mv "$tmp/bench.json" "$OUT/bench.json"
    rm -rf "$tmp"
    if [ $DRY -eq 1 ]; then
        step ncu-fused 30 "$TOOLS_LOG" --gpu ncu --version
    elif ! command -v ncu >/dev/null 2>&1; then
        record ncu-fused FAIL "ncu is not on the PATH"
    else
        # the first fused epoch launch, after the probe's kernels; clocks left as they are
        step ncu-fused 120 "$TOOLS_LOG" ncu --clock-control none --kernel-name gpunet_sgd_epoch \
            --launch-count 1 --section LaunchStats --section Occupancy --section SpeedOfLight \
            --section WarpStateStats --section SchedulerStats \
            "$PY" -m gpunet train --device cuda --engine fused --limit 5000 --epochs 1 --seed 1 --quiet
    fi
    sanitize memcheck eager 300
    sanitize racecheck eager 60
}

for TIER in "${TIER_LIST[@]}"; do
    case $TIER in
        1) TIER_BUDGET=${GPU_VERIFY_SECONDS_1:-170} ;;
        2) TIER_BUDGET=${GPU_VERIFY_SECONDS_2:-230} ;;
        3) TIER_BUDGET=${GPU_VERIFY_SECONDS_3:-280} ;;
    esac
    TIER_START=$(date +%s) TIER_FAILED=""
    {
        printf '== tier %s%s, %s, %s, checkout %s%s, at most %ss\n' "$TIER" \
            "$([ $DRY -eq 1 ] && echo ' (dry run)')" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$GPU_NAME" \
            "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
            "$(git diff --quiet HEAD 2>/dev/null || echo ' + changes')" "$TIER_BUDGET"
    } >>"$SUMMARY"
    "tier$TIER"
    check_outdir
    printf '== tier %s verdict: %s (%ss)\n' "$TIER" \
        "$([ -z "$TIER_FAILED" ] && echo 'every step passed' || echo "FAILED:$TIER_FAILED")" \
        "$(($(date +%s) - TIER_START))" >>"$SUMMARY"
done
echo "== next: python scripts/gpu_import.py OUTDIR on the CPU machine (benchmarks/ and the GPU table)" >>"$SUMMARY"
cat "$SUMMARY"
exit $FAILED
