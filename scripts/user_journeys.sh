#!/usr/bin/env bash
# The three users' journeys of issue 30 (a book reader on a laptop, a researcher with own data, an NVIDIA set-up): each step's command, wall time and result into DIR/journeys.md. Usage: scripts/user_journeys.sh [DIR] (default /tmp/jr); needs the checkout's .venv (Pillow) and ../shared.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
J=${1:-/tmp/jr}; mkdir -p $J; LOG=$J/journeys.md; : > $LOG
step() {  # step "title" command...
  local title="$1"; shift
  local start=$(date +%s.%N)
  ( "$@" ) > $J/out.txt 2>&1; local rc=$?
  local end=$(date +%s.%N)
  printf '\n### %s\n`%s`  (exit %s, %.1f s)\n```\n%s\n```\n' "$title" "$*" "$rc" "$(echo "$end - $start" | bc)" "$(tail -n ${TAILN:-6} $J/out.txt | cut -c1-200)" >> $LOG
}
rm -rf $J/src $J/v1 $J/v2 $J/work; git clone -q "$ROOT" $J/src; ln -sfn "$ROOT/../shared" $J/shared
mkdir -p $J/work; cd $J/work
echo "## 1. A book reader on a laptop (fresh venv, no GPU)" >> $LOG
step "install" bash -c "python3 -m venv $J/v1 && $J/v1/bin/pip install -q $J/src"
G=$J/v1/bin/gpunet
TAILN=5 step "chapter 1's run, the defaults" $G train
TAILN=8 step "network2.py's run with early stopping and the best epoch kept" $G train --cost cross-entropy --eta 0.5 --lmbda 5.0 --init default --evaluate validation --early-stop 10 --save-best best.json --epochs 60 --quiet
"$ROOT/.venv/bin/python" -c "
import numpy as np, gpunet
from PIL import Image
X, y = gpunet.load_mnist().test
Image.fromarray((255 - X[0].reshape(28, 28) * 255).astype(np.uint8)).resize((280, 280)).save('$J/digit.png')
print('label', y[0])" > $J/label.txt
step "predict a digit photo before Pillow is installed" $G predict best.json $J/digit.png
step "install the hint's package" $J/v1/bin/pip install -q "pillow>=9"
step "predict a drawn digit (label $(cat $J/label.txt | cut -d' ' -f2), dark on white, 280x280)" $G predict best.json $J/digit.png
TAILN=4 step "choose eta by chapter 3's heuristic (first 10,000 images)" $G find-eta --cost cross-entropy --lmbda 5.0 --init default --limit 10000
echo "## 2. A researcher with their own data and the library" >> $LOG
$J/v1/bin/python - <<PY
import numpy as np, gpunet, os
X, y = gpunet.load_mnist().training
os.makedirs("$J/work/kaggle", exist_ok=True)
for name, a, b in (("train.csv", 0, 12000), ("test.csv", 40000, 42000)):
    with open(f"$J/work/kaggle/{name}", "w") as f:
        f.write("label," + ",".join(f"pixel{i}" for i in range(784)) + "\n")
        for img, lab in zip((X[a:b] * 255).round().astype(int), y[a:b]):
            f.write(f"{lab}," + ",".join(map(str, img)) + "\n")
PY
TAILN=5 step "own CSV data, a validation split, the input layer from the data" $G train --data kaggle --validation 0.1 --sizes auto,30,10 --cost cross-entropy --eta 0.5 --evaluate validation --epochs 10 --metrics m.jsonl --quiet
TAILN=9 step "a sweep over eta and momentum, labelled" $G sweep --data kaggle --validation 0.1 --cost cross-entropy --eta 0.1,0.5 --momentum 0,0.9 --seeds 0-1 --evaluate validation --epochs 5 --metrics s.jsonl --quiet
step "install pandas for the table" $J/v1/bin/pip install -q pandas
TAILN=8 step "metrics as a data frame" $J/v1/bin/python -c "import gpunet; df = gpunet.read_metrics(['s.jsonl']).to_frame(); print(df.shape); print(df.groupby(['eta','momentum']).evaluation_correct.max())"
TAILN=4 step "the library with labels as a Python list, ReLU and the softmax" $J/v1/bin/python -c "
import gpunet
X, y = gpunet.load_mnist().training
net = gpunet.Network([784, 100, 10], activation='relu', cost='log-likelihood', seed=0)
h = net.SGD((X[:10000], list(y[:10000])), 5, 10, 0.03, evaluation_data=gpunet.load_mnist().validation, monitor_evaluation_accuracy=True, early_stopping_n=3, keep_best=True, verbose=False)
print('engine', h.engine, 'best epoch', h.best_epoch, 'accuracies', h.evaluation_accuracy)"
echo "## 3. Setting up an NVIDIA machine (this VM has no GPU)" >> $LOG
step "read the driver's CUDA version" nvidia-smi
step "check the device before any CUDA extra" $G check --device cuda
step "what the cuda13 extra would install (dry run)" bash -c "$J/v1/bin/pip install --dry-run --quiet --report $J/rep.json '$J/src[cuda13]' >/dev/null 2>&1; $J/v1/bin/python -c \"import json; r=json.load(open('$J/rep.json')); print(sorted(i['metadata']['name'] for i in r['install'] if 'cupy' in i['metadata']['name'] or 'nvidia' in i['metadata']['name']))\""
step "the GPU verification script" bash -c "cd $J/src && PATH=$J/v1/bin:$PATH scripts/gpu_verify.sh --tier 1,2 $J/gpu_out"
TAILN=4 step "train with auto on a machine without a GPU" $G train --limit 1000 --epochs 1
echo done
