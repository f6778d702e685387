#!/usr/bin/env bash
# Times mlmod against Lmod in the same run (hyperfine), on a generated tree of 2,000
# modulefiles and on the easybuild tree in ../shared/data/modulefiles/easybuild.
# Commands: avail, -t avail, spider NAME, keyword WORD, load of a module with 5
# dependencies, list, unload, shell init. No cache files are used by either side.
# Needs: hyperfine, lmod (Debian packages). Prints a Markdown table of medians and
# ratios (Lmod / mlmod). Each row is ROUNDS (default 3) alternating hyperfine rounds of
# RUNS runs (default 5) per side; the ratio is the median of the rounds' ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { echo "hyperfine is not installed (apt-get install hyperfine)" >&2; exit 1; }
LMOD_CMD=${LMOD_CMD:-/usr/share/lmod/lmod/libexec/lmod}
LMOD_INIT=${LMOD_INIT:-/usr/share/lmod/lmod/init/bash}
[ -x "$LMOD_CMD" ] || { echo "Lmod not found at $LMOD_CMD (apt-get install lmod)" >&2; exit 1; }
cargo build --release -p mlmod >&2
MLMOD="$(pwd)/${CARGO_TARGET_DIR:-target}/release/mlmod"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
RUNS=${RUNS:-5}
ROUNDS=${ROUNDS:-3}

# A generated tree: 400 names x 5 versions = 2,000 modulefiles; lib000..lib004 are the
# dependencies of app/1.0.
GEN="$WORK/gen"
python3 - "$GEN" <<'PY'
import os, sys
root = sys.argv[1]
for n in range(400):
    name = f"lib{n:03d}"
    os.makedirs(f"{root}/{name}", exist_ok=True)
    for v in range(5):
        with open(f"{root}/{name}/{v}.{n % 7}.{v * 3}.lua", "w") as f:
            f.write(f'whatis("Description: generated library {name} version {v}")\n'
                    f'local root = "/apps/software/{name}/{v}"\n'
                    'prepend_path("PATH", pathJoin(root, "bin"))\n'
                    'prepend_path("LD_LIBRARY_PATH", pathJoin(root, "lib"))\n'
                    f'setenv("{name.upper()}_ROOT", root)\n')
os.makedirs(f"{root}/app", exist_ok=True)
with open(f"{root}/app/1.0.lua", "w") as f:
    f.write('whatis("Description: an application with five dependencies")\n')
    for d in range(5):
        f.write(f'depends_on("lib{d:03d}")\n')
    f.write('prepend_path("PATH", "/apps/software/app/1.0/bin")\n')
PY

EB=${MLMOD_MODULEFILES_DIR:-../shared/data/modulefiles}/easybuild
TREES=("$GEN")
[ -d "$EB" ] && TREES+=("$(cd "$EB" && pwd)")

row() { # name lmod-cmd mlmod-cmd
  # ROUNDS alternating rounds (Lmod, then mlmod) of RUNS runs each: this machine's
  # speed drifts over tens of seconds, so a ratio is taken within each round and the
  # median over rounds reported, with the medians of all runs of each side.
  local r
  for r in $(seq "$ROUNDS"); do
    hyperfine -N --warmup 2 --runs "$RUNS" --export-json "$WORK/h$r.json" "$2" "$3" >/dev/null 2>&1 || \
    hyperfine --warmup 2 --runs "$RUNS" --export-json "$WORK/h$r.json" "$2" "$3" >/dev/null
  done
  python3 - "$1" "$WORK"/h*.json <<'PY'
import json, statistics, sys
rounds = [json.load(open(f))['results'] for f in sys.argv[2:]]
ratios = [r[0]['median'] / r[1]['median'] for r in rounds]
l = statistics.median(t for r in rounds for t in r[0]['times']) * 1000
m = statistics.median(t for r in rounds for t in r[1]['times']) * 1000
lo, hi = min(ratios), max(ratios)
print(f"| {sys.argv[1]} | {l:.1f} ms | {m:.1f} ms | {statistics.median(ratios):.1f}x | {lo:.1f}-{hi:.1f}x |")
PY
  rm -f "$WORK"/h*.json
}

echo "| command | Lmod median | mlmod median | ratio (median of rounds) | ratio range |"
echo "| --- | --- | --- | --- | --- |"
for T in "${TREES[@]}"; do
  label=$(basename "$T")
  if [ "$label" = gen ]; then SP=lib042; KW=library; LOAD=app/1.0; UNL=app; else SP=Java; KW=bzip2; LOAD=NLopt/2.7.1-GCCcore-12.3.0; UNL=NLopt; fi
  # Environments with the module loaded, for list and unload.
  env -i HOME="$WORK" PATH=/usr/bin:/bin MODULEPATH="$T" bash --noprofile --norc -c "source $LMOD_INIT; module use $T; module load $LOAD; export -p" > "$WORK/lmod_env.sh" 2>/dev/null
  env -i HOME="$WORK" PATH=/usr/bin:/bin MODULEPATH="$T" bash --noprofile --norc -c "eval \"\$($MLMOD init bash)\"; module use $T; module load $LOAD; export -p" > "$WORK/mlmod_env.sh" 2>/dev/null
  L="env -i HOME=$WORK PATH=/usr/bin:/bin LMOD_IGNORE_CACHE=1 MODULEPATH=$T $LMOD_CMD bash"
  M="env -i HOME=$WORK PATH=/usr/bin:/bin MODULEPATH=$T $MLMOD bash"
  row "$label: avail" "$L avail" "$M avail"
  row "$label: -t avail" "$L -t avail" "$M -t avail"
  row "$label: spider $SP" "$L spider $SP" "$M spider $SP"
  row "$label: keyword $KW" "$L keyword $KW" "$M keyword $KW"
  row "$label: load $LOAD" "$L load $LOAD" "$M load $LOAD"
  row "$label: list" "bash --noprofile --norc -c 'source $WORK/lmod_env.sh; $LMOD_CMD bash list'" "bash --noprofile --norc -c 'source $WORK/mlmod_env.sh; $MLMOD bash list'"
  row "$label: unload $UNL" "bash --noprofile --norc -c 'source $WORK/lmod_env.sh; $LMOD_CMD bash unload $UNL'" "bash --noprofile --norc -c 'source $WORK/mlmod_env.sh; $MLMOD bash unload $UNL'"
done
row "shell init (bash)" "env -i PATH=/usr/bin:/bin bash --noprofile --norc -c 'source $LMOD_INIT'" "env -i PATH=/usr/bin:/bin bash --noprofile --norc -c 'eval \"\$($MLMOD init bash)\"'"
