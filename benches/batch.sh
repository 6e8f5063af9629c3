#!/usr/bin/env bash
# End-to-end benchmark: hedui batch vs the DuckDB reference (../shared/peers/reference.py)
# on the same files, alternately, in the same run.
#
#   benches/batch.sh DATA_DIR [RUNS=3]
#
# DATA_DIR is a county written by ../shared/peers/gen.py (Parquet or CSV). Needs
# /tmp/ref-venv (see ../shared/peers/README.md "Install") and a release build of hedui.
# Prints, per tool, the median wall time, CPU time (user+sys) and peak RSS over RUNS, and
# the ratio hedui / DuckDB.
set -euo pipefail
data=${1:?usage: benches/batch.sh DATA_DIR [RUNS]}
runs=${2:-3}
here=$(cd "$(dirname "$0")/.." && pwd)
peers=${PEERS:-$here/../shared/peers}
py=${PY:-/tmp/ref-venv/bin/python}
hedui=${HEDUI:-${CARGO_TARGET_DIR:-$here/target}/release/hedui}
as_of=${AS_OF:-2026-11-01}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
[ -x "$hedui" ] || { echo "build first: cargo build --release" >&2; exit 2; }
"$hedui" keygen --out "$work/keys" >/dev/null
for i in $(seq 1 "$runs"); do
  /usr/bin/time -f "hedui %e %U %S %M" -a -o "$work/times" \
    "$hedui" batch --caseload "$data" --sources "$data" --recipient "$work/keys/civil.pub" \
      --out "$work/run" --as-of "$as_of" >/dev/null 2>"$work/hedui.err" || [ $? -eq 1 ]
  /usr/bin/time -f "duckdb %e %U %S %M" -a -o "$work/times" \
    "$py" "$peers/reference.py" --data "$data" --as-of "$as_of" --out "$work/ref.parquet" >/dev/null
done
python3 - "$work/times" "$data" "$runs" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    p = line.split()
    if len(p) == 5 and p[0] in ("hedui", "duckdb"):
        rows.setdefault(p[0], []).append((float(p[1]), float(p[2]) + float(p[3]), int(p[4]) / 1024))
med = {k: tuple(statistics.median(x[i] for x in v) for i in range(3)) for k, v in rows.items()}
print(f"data: {sys.argv[2]}  runs: {sys.argv[3]}")
print(f"{'tool':<8}{'wall s':>10}{'cpu s':>10}{'peak MiB':>10}")
for k in ("hedui", "duckdb"):
    w, c, m = med[k]
    print(f"{k:<8}{w:>10.2f}{c:>10.2f}{m:>10.0f}")
h, d = med["hedui"], med["duckdb"]
print(f"{'ratio':<8}{h[0]/d[0]:>10.2f}{h[1]/d[1]:>10.2f}{h[2]/d[2]:>10.2f}   (hedui / DuckDB)")
PY
