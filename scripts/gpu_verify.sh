#!/usr/bin/env bash
# Verify gpunet's CUDA path on a machine with an NVIDIA GPU, in one run of under 10 minutes.
#
#   scripts/gpu_verify.sh OUTDIR
#
# Needs no network: CuPy, NumPy, PyTorch and pytest must already be installed (the GPU
# machines this project is tested on have Python 3.12, cupy-cuda13x 14.2, NumPy 2.5,
# PyTorch 2.11), and compute-sanitizer on the PATH (CUDA toolkit) for the sanitizer steps.
#
# Steps (each logged, timed and time-boxed; a failing step is recorded and the next runs):
#   1. install      pip install -e . --no-deps --no-build-isolation
#   2. environment  nvidia-smi, versions, `gpunet info`
#   3. check        gpunet check --device cuda --json OUTDIR/check.json
#   4. tests        the whole test suite, CUDA tests active (a CUDA skip is a failure),
#                   less tests/test_installed.py (it needs PyPI for a fresh environment)
#   5. sanitizer    compute-sanitizer memcheck and racecheck on a short training run with
#                   the fused engine (the eager one if there is no --engine fused) and
#                   on the eager engine; CuPy's memory pool is off there, so every
#                   allocation is its own and memcheck sees each out-of-bounds access
#   6. targets      python -m gpunet.bench_targets: issue 9's and 11's GPU targets
#                   (fused book epoch, against NumPy and PyTorch CUDA; K = 100 vs 1)
#   7. bench        gpunet bench, every GPU implementation and the PyTorch CUDA peer
#
# Everything goes to OUTDIR, in at most 8 files: summary.txt (the step table, the
# targets' verdicts and what to commit), run.log (every step's output), pytest.log,
# sanitizer.log, check.json, targets.json, bench.json, bench.md. The check and bench results are also copied into benchmarks/
# with the GPU's name and the date in their names, ready to commit.
# Exit status: 0 when every step passed, 1 otherwise, 2 for bad usage.

set -u
if [ $# -ne 1 ] || [ "${1#-}" != "$1" ]; then
    echo "usage: scripts/gpu_verify.sh OUTDIR" >&2
    exit 2
fi
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$1" || { echo "gpu_verify: cannot create $1" >&2; exit 2; }
OUT="$(cd "$1" && pwd)"
cd "$ROOT" || exit 2

PY="${PYTHON:-python3}"
BUDGET=${GPU_VERIFY_BUDGET:-570}  # seconds for everything: under 10 minutes
START=$(date +%s)
RUN_LOG="$OUT/run.log"
SUMMARY="$OUT/summary.txt"
: >"$RUN_LOG"
: >"$OUT/sanitizer.log"
STEPS=()  # "name|status|seconds|note"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1

log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$RUN_LOG"; }

remaining() { echo $((BUDGET - ($(date +%s) - START))); }

# step NAME CAP_SECONDS LOGFILE CMD...: run CMD with a timeout of min(CAP, time left),
# its output to LOGFILE (and run.log), and record the outcome.
step() {
    local name=$1 cap=$2 logfile=$3
    shift 3
    local left; left=$(remaining)
    local limit=$((cap < left ? cap : left))
    if [ "$limit" -lt 10 ]; then
        log "SKIP  $name: out of time (the budget is ${BUDGET}s)"
        STEPS+=("$name|SKIPPED|0|out of time")
        return 1
    fi
    log "----- $name (at most ${limit}s): $*"
    local t0; t0=$(date +%s)
    { echo "===== $name: $*"; } >>"$logfile"
    timeout --kill-after=10 "$limit" "$@" >>"$logfile" 2>&1
    local rc=$?
    local dt=$(($(date +%s) - t0))
    [ "$logfile" != "$RUN_LOG" ] && tail -n 25 "$logfile" >>"$RUN_LOG"
    local status=PASS note="exit $rc"
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
        status=FAIL; note="timed out after ${limit}s"
    elif [ $rc -ne 0 ]; then
        status=FAIL
    fi
    log "$status  $name (${dt}s, $note)"
    STEPS+=("$name|$status|$dt|$note")
    [ "$status" = PASS ]
}

# record NAME STATUS NOTE: a verdict that is not a command's exit status.
record() {
    log "$2  $1 ($3)"
    STEPS+=("$1|$2|0|$3")
}

# ---------------------------------------------------------------- 1. install
step install 120 "$RUN_LOG" "$PY" -m pip install -e . --no-deps --no-build-isolation

# ---------------------------------------------------------------- 2. environment
step environment 60 "$RUN_LOG" bash -c "nvidia-smi; $PY -c 'import sys, numpy, cupy; print(sys.version); print(\"numpy\", numpy.__version__, \"cupy\", cupy.__version__)'; $PY -c 'import torch; print(\"torch\", torch.__version__, torch.version.cuda, torch.cuda.is_available())'; command -v compute-sanitizer; $PY -m gpunet info"
GPU_NAME=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1)
GPU_NAME=${GPU_NAME:-unknown-gpu}
GPU_SLUG=$(echo "$GPU_NAME" | tr '[:upper:]' '[:lower:]' | sed -e 's/^nvidia //' -e 's/[^a-z0-9]\+/-/g' -e 's/^-//' -e 's/-$//')
DAY=$(date -u +%Y%m%d)
STAMP="gpu-${GPU_SLUG}-${DAY}"
log "GPU: $GPU_NAME; results named $STAMP"

# ---------------------------------------------------------------- 3. gpunet check
step check 120 "$RUN_LOG" "$PY" -m gpunet check --device cuda --json "$OUT/check.json"

# ---------------------------------------------------------------- 4. the test suite
# Four workers where pytest-xdist is installed (whole files per worker), else serially.
PARALLEL=()
if "$PY" -c 'import xdist' 2>/dev/null; then PARALLEL=(-n 4 --dist loadfile); fi
# tests/test_installed.py builds a wheel and installs it, with NumPy, into a fresh virtual
# environment: that needs PyPI, which the GPU machine cannot reach (CI runs it).
step tests 330 "$OUT/pytest.log" "$PY" -m pytest -q -rs -p no:cacheprovider "${PARALLEL[@]}" \
    --ignore=tests/test_installed.py
# The CUDA tests must have run: a skip that names the GPU means they did not.
if ! grep -q -E '^[0-9]+ (passed|failed)|^=+ .*(passed|failed)' "$OUT/pytest.log"; then
    record cuda-tests-ran FAIL "unknown: the suite did not finish"
elif grep -q "no GPU" "$OUT/pytest.log"; then
    record cuda-tests-ran FAIL "CUDA tests skipped: $(grep -m1 'no GPU' "$OUT/pytest.log" | sed 's/.*no GPU/no GPU/')"
else
    record cuda-tests-ran PASS "no CUDA test skipped"
fi

# ---------------------------------------------------------------- 5. compute-sanitizer
# gpunet train through a wrapper that turns CuPy's memory pool off first.
TRAIN=("$PY" -c 'import sys, cupy; cupy.cuda.set_allocator(None); from gpunet.cli import main; sys.exit(main(sys.argv[1:]))'
       train --device cuda --limit 2000 --epochs 1 --seed 1)
if "$PY" -m gpunet train --help 2>/dev/null | grep -q -- "fused"; then
    FIRST_ENGINE=fused
else
    FIRST_ENGINE=eager
    log "note: gpunet train has no --engine fused here; the sanitizers run the eager engine twice"
fi
if command -v compute-sanitizer >/dev/null 2>&1; then
    for tool in memcheck racecheck; do
        for engine in $FIRST_ENGINE eager; do
            step "sanitizer-$tool-$engine" 75 "$OUT/sanitizer.log" \
                compute-sanitizer --tool "$tool" --error-exitcode 99 \
                "${TRAIN[@]}" --engine "$engine"
        done
    done
else
    record sanitizer FAIL "compute-sanitizer is not on the PATH"
fi

# ---------------------------------------------------------------- 6. targets
# Issues 9 and 11: the fused book epoch (<= 30 ms, >= 10x NumPy and PyTorch CUDA here)
# and K = 100 networks in one launch (<= 3x one); one PASS/FAIL line each in run.log.
step targets 150 "$RUN_LOG" "$PY" -m gpunet.bench_targets "$OUT/targets.json"

# ---------------------------------------------------------------- 7. benchmark
IMPLS=$("$PY" -c 'from gpunet.bench import IMPLEMENTATIONS as I; print(",".join(i for i in I if "cupy" in i or "cuda" in i))' 2>>"$RUN_LOG")
if [ -n "$IMPLS" ]; then
    mkdir -p "$OUT/bench-tmp"
    if step bench 240 "$RUN_LOG" "$PY" -m gpunet bench --impl "$IMPLS" --out "$OUT/bench-tmp" --stamp "$STAMP"; then
        mv "$OUT/bench-tmp/$STAMP.json" "$OUT/bench.json" 2>/dev/null
        mv "$OUT/bench-tmp/$STAMP.md" "$OUT/bench.md" 2>/dev/null
        # Every GPU implementation must have run on some configuration (the fused engine
        # may decline a network too wide for it; that is noted, not failed).
        VERDICT=$("$PY" - "$OUT/bench.json" <<'PYEOF' 2>&1
import collections, json, sys
results = json.load(open(sys.argv[1]))["results"]
runs = collections.defaultdict(list)
for r in results:
    runs[r["implementation"]].append(r)
never = sorted(i for i, rs in runs.items() if all(r.get("skipped") for r in rs))
partly = sorted(f"{r['implementation']} on {r['config']}" for r in results
                if r.get("skipped") and r["implementation"] not in never)
if never:
    print("FAIL never ran: " + "; ".join(f"{i} ({runs[i][0]['skipped'][:70]})" for i in never))
else:
    print("PASS every GPU implementation ran" + ("; skipped " + ", ".join(partly) if partly else ""))
PYEOF
)
        record bench-ran-on-gpu "${VERDICT%% *}" "${VERDICT#* }"
    fi
    rm -rf "$OUT/bench-tmp"
else
    record bench FAIL "no GPU implementation found in gpunet.bench.IMPLEMENTATIONS"
fi

# ---------------------------------------------------------------- results into benchmarks/
# (only from a machine where nvidia-smi named a GPU)
COPIED=()
[ "$GPU_NAME" != unknown-gpu ] && mkdir -p benchmarks && for pair in "bench.json:$STAMP.json" "bench.md:$STAMP.md" "check.json:check-$STAMP.json" "targets.json:targets-$STAMP.json"; do
    src="$OUT/${pair%%:*}" dst="benchmarks/${pair#*:}"
    if [ -s "$src" ] && cp "$src" "$dst"; then COPIED+=("$dst"); fi
done

# ---------------------------------------------------------------- summary
FAILED=0
{
    echo "gpunet GPU verification, $(date -u +%Y-%m-%dT%H:%M:%SZ), $GPU_NAME"
    echo "checkout: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
    echo "total: $(($(date +%s) - START)) s (budget ${BUDGET} s)"
    echo
    printf '%-34s %-8s %6s  %s\n' step status seconds note
    for s in "${STEPS[@]}"; do
        IFS='|' read -r name status secs note <<<"$s"
        printf '%-34s %-8s %6s  %s\n' "$name" "$status" "$secs" "$note"
        [ "$status" = PASS ] || FAILED=1
    done
    echo
    if [ -s "$OUT/check.json" ]; then
        echo "gpunet check:"
        grep -E '^(PASS|FAIL|SKIP) ' "$RUN_LOG" | grep -v -E '^(PASS|FAIL) (fused|K = 100)' \
            | sed 's/^/  /'
        echo
    fi
    if grep -q -E '^(PASS|FAIL) (fused|K = 100)' "$RUN_LOG"; then
        echo "targets (issues 9 and 11; targets.json):"
        grep -E '^(PASS|FAIL) (fused|K = 100)' "$RUN_LOG" | sed 's/^/  /'
        echo
    fi
    if [ -f "$OUT/pytest.log" ]; then
        echo "test suite: $(grep -E '[0-9]+ (passed|failed|error)' "$OUT/pytest.log" | tail -n 1 || true)"
    fi
    echo "sanitizer findings: $(grep -c -E '(Invalid|Race reported|Hazard|ERROR SUMMARY: [1-9])' "$OUT/sanitizer.log") lines (sanitizer.log)"
    echo
    if [ ${#COPIED[@]} -gt 0 ]; then
        echo "copied into benchmarks/ (commit them, and add the numbers to docs/performance.md):"
        printf '  %s\n' "${COPIED[@]}"
    fi
    echo "verdict: $([ $FAILED -eq 0 ] && echo 'all steps passed' || echo 'SOME STEPS FAILED')"
} >"$SUMMARY"
cat "$SUMMARY" | tee -a "$RUN_LOG"
exit $FAILED
