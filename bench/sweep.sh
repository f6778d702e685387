#!/usr/bin/env bash
# Wall time of the FGD paper's sweep: 6 policies x 10 seeds on Alibaba's default trace,
# timed with hyperfine (Debian package `hyperfine`). The paper's own simulator needs
# about 10 minutes per run on 2 vCPUs (its experiments/README.md), i.e. ~600 minutes
# for these 60 runs run one after another; the ratio is printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data/alibaba-gpu-v2023}
if [ ! -f "$DATA/openb_pod_list_default.csv" ]; then
  echo "no trace at $DATA (set DATA=...)" >&2
  exit 1
fi
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine; }
cargo build --release -p mlplane
hyperfine --warmup 1 --runs "${RUNS:-3}" --export-json /tmp/mlplane-sweep.json \
  "target/release/mlplane simulate --nodes $DATA/openb_node_list_gpu_node.csv --pods $DATA/openb_pod_list_default.csv --policy Random,DotProd,GpuClustering,GpuPacking,BestFit,FGD --seeds 10 --json > /dev/null"
python3 - <<'PY'
import json
m = json.load(open('/tmp/mlplane-sweep.json'))['results'][0]['median']
print(f"median sweep: {m:.1f} s for 60 runs; paper simulator ~600 min sequential -> {600*60/m:.0f}x faster")
PY
