#!/usr/bin/env bash
# Every GPU check of the project in one go, for a machine with a GPU lent for minutes:
#   bash bench/gpu_session.sh DATA OUT
# DATA: an ILSVRC-2012-layout set (imagenette-mini.zip will do); OUT: where the logs and JSON go.
# Each step has its own time limit, so a slow or broken step cannot eat the others' time.
# About 7 minutes in all at most: the GPU paths (gpu_check.py); images/s against torchvision's
# AlexNet (train.py), with ours also timed without LRN and with nn.LocalResponseNorm, and a profile
# of one bf16 step at 224 px, to tell where the 0.4-0.67x of the first GPU session (BENCHMARKS.md)
# goes; and the paper's LRN over training (lrn_in_training.py, imagenet profile at lr 0.003, where
# the net learns on imagenette-mini; docs/paper.md section 8).
set -u
DATA=$1; OUT=$2
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
cd "$(dirname "$0")/.."
step() {  # step SECONDS NAME COMMAND...
  local limit=$1 name=$2; shift 2
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  echo "== $name: exit $? (limit ${limit}s)"; tail -c 2000 "$OUT/$name.log"
}
nvidia-smi -L
step 100 gpu_check python3 bench/gpu_check.py --data "$DATA" --workdir /dev/shm/gc --epochs 2 --json "$OUT/gpu_check.json"
step 120 train_bench python3 bench/train.py --cases 224 64 --batch 128 --channels-last both --steps 10 --warmup 3 --repeats 5 \
  --extra torch_lrn no_lrn
step 40 profile_224 python3 bench/train.py --profile --cases 224 --batch 128 --precision bf16 --channels-last yes
step 130 lrn_imagenet python3 bench/lrn_in_training.py --data "$DATA" --profile imagenet --lr 0.003 --epochs 150 \
  --measure-at 1 5 10 20 50 100 150 --workdir /dev/shm/li --json "$OUT/lrn_imagenet.json"
