#!/usr/bin/env bash
# Wall time of the FGD paper's sweep: 6 policies x 10 seeds on Alibaba's default trace,
# timed with hyperfine (install it first, e.g. `apt-get install hyperfine`). The paper's
# own simulator needs about 10 minutes per run on 2 vCPUs (its experiments/README.md),
# i.e. ~600 minutes for these 60 runs one after another; the ratio is printed at the end.
#
# Usage: bench/sweep.sh            (trace in $MLPLANE_TRACE_DIR or ../shared/data/alibaba-gpu-v2023)
#        RUNS=5 bench/sweep.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${MLPLANE_TRACE_DIR:-../shared/data/alibaba-gpu-v2023}
if [ ! -f "$DATA/openb_pod_list_default.csv" ]; then
  echo "no trace at $DATA (set MLPLANE_TRACE_DIR)" >&2
  exit 1
fi
command -v hyperfine >/dev/null || { echo "hyperfine is not installed (apt-get install hyperfine)" >&2; exit 1; }
cargo build --release -p mlplane
BIN="${CARGO_TARGET_DIR:-target}/release/mlplane"
OUT=$(mktemp)
hyperfine --warmup 1 --runs "${RUNS:-3}" --export-json "$OUT" \
  "$BIN simulate --nodes $DATA/openb_node_list_gpu_node.csv --pods $DATA/openb_pod_list_default.csv --policy Random,DotProd,GpuClustering,GpuPacking,BestFit,FGD --seeds 10 --json > /dev/null"
python3 - "$OUT" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))['results'][0]['median']
print(f"median sweep: {m:.1f} s for 60 runs; the paper's simulator: ~600 min one after another -> {600 * 60 / m:.0f}x less wall time")
PY
rm -f "$OUT"
