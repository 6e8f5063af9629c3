#!/usr/bin/env bash
# End-to-end benchmark: hedui batch vs the DuckDB reference (../shared/peers/reference.py)
# on the same files, alternately, in the same run.
#
#   benches/batch.sh DATA_DIR [RUNS=3]
#
# DATA_DIR is a county written by ../shared/peers/gen.py (Parquet or CSV). Needs
# /tmp/ref-venv (see ../shared/peers/README.md "Install") and a release build of hedui.
# Prints, per tool, the median wall time, CPU time (user+sys) and peak RSS over RUNS, and
# the ratio hedui / DuckDB; then checks that hedui's determinations agree with the
# reference's (../shared/peers/compare.py, 100 % required).
#
# Environment:
#   INCREMENTAL=1   also time incremental runs: benches/delta.py writes a 1 % nightly delta
#                   (DELTA_FRACTION) once, then `hedui batch --previous RUN --delta DELTA`
#                   runs RUNS times; prints its median and the ratio incremental / full.
#   MEMORY_LIMITS="8G 2G"  also one run per --memory-limit, printing its wall time and peak RSS.
#   HEDUI_ARGS      extra arguments for every hedui batch (e.g. --partition 6205).
#
# Sizes of issue 5 (gen.py; disk: 146 MB, 1.5 GB, 2 GB of Parquet):
#   python ../shared/peers/gen.py --households 30000 --out /tmp/county
#   python ../shared/peers/gen.py --households 300000 --regions 620502 620503 620521 620522 620523 620524 620525 --out /tmp/h300k
#   python ../shared/peers/gen.py --households 400000 --regions (the same 7) --out /tmp/p1m   # ~1 M members
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
# (the s24 trial: a clone without ../shared beside it failed with Python's "can't open file")
[ -f "$peers/reference.py" ] || { echo "no reference at $peers/reference.py: link the shared folder beside the clone (README: \"What is not in this repository\") or set PEERS=/path/to/shared/peers" >&2; exit 2; }
[ -x "$py" ] || { echo "no python at $py: set PY= to the venv's python of ../shared/peers/README.md \"Install\"" >&2; exit 2; }
"$hedui" keygen --out "$work/keys" >/dev/null
for i in $(seq 1 "$runs"); do
  /usr/bin/time -f "hedui %e %U %S %M" -a -o "$work/times" \
    "$hedui" batch --caseload "$data" --sources "$data" --recipient "$work/keys/civil.pub" \
      --out "$work/run" --as-of "$as_of" ${HEDUI_ARGS:-} >/dev/null 2>"$work/hedui.err" || [ $? -eq 1 ]
  /usr/bin/time -f "duckdb %e %U %S %M" -a -o "$work/times" \
    "$py" "$peers/reference.py" --data "$data" --as-of "$as_of" --out "$work/ref.parquet" >/dev/null
done
if [ -n "${INCREMENTAL:-}" ]; then
  "$py" "$here/benches/delta.py" "$data" "$work/delta" --fraction "${DELTA_FRACTION:-0.01}" >&2
  for i in $(seq 1 "$runs"); do
    rm -rf "$work/inc"
    /usr/bin/time -f "incremental %e %U %S %M" -a -o "$work/times" \
      "$hedui" batch --caseload "$data" --sources "$data" --recipient "$work/keys/civil.pub" \
        --out "$work/inc" --as-of "$as_of" --previous "$work/run" --delta "$work/delta" \
        ${HEDUI_ARGS:-} >/dev/null 2>"$work/inc.err" || [ $? -eq 1 ]
  done
fi
for lim in ${MEMORY_LIMITS:-}; do
  rm -rf "$work/lim"
  /usr/bin/time -f "limit-$lim %e %U %S %M" -a -o "$work/times" \
    "$hedui" batch --caseload "$data" --sources "$data" --recipient "$work/keys/civil.pub" \
      --out "$work/lim" --as-of "$as_of" --memory-limit "$lim" >/dev/null 2>"$work/lim.err" || [ $? -eq 1 ]
done
python3 - "$work/times" "$data" "$runs" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    p = line.split()
    if len(p) == 5:
        rows.setdefault(p[0], []).append((float(p[1]), float(p[2]) + float(p[3]), int(p[4]) / 1024))
med = {k: tuple(statistics.median(x[i] for x in v) for i in range(3)) for k, v in rows.items()}
print(f"data: {sys.argv[2]}  runs: {sys.argv[3]}")
print(f"{'tool':<8}{'wall s':>10}{'cpu s':>10}{'peak MiB':>10}")
for k in ("hedui", "duckdb"):
    w, c, m = med[k]
    print(f"{k:<8}{w:>10.2f}{c:>10.2f}{m:>10.0f}")
h, d = med["hedui"], med["duckdb"]
print(f"{'ratio':<8}{h[0]/d[0]:>10.2f}{h[1]/d[1]:>10.2f}{h[2]/d[2]:>10.2f}   (hedui / DuckDB)")
for k in sorted(med):
    if k not in ("hedui", "duckdb"):
        w, c, m = med[k]
        print(f"{k:<12}{w:>6.2f}{c:>10.2f}{m:>10.0f}   wall {w/h[0]:.3f} x hedui full")
PY
# (a failed open, e.g. a full disk under the ~2 GB of opened reports at 300k, would read as
# missing households: it is said, and the check fails)
if ! "$hedui" open --key "$work/keys/civil.key" "$work/run/reports.jsonl" > "$work/opened.jsonl" 2>"$work/open.err"; then
  echo "FAIL: hedui open of the full run's reports failed: $(grep -v -i 'signer' "$work/open.err" | tail -1)" >&2
  exit 1
fi
"$py" "$peers/compare.py" --reference "$work/ref.parquet" --reports "$work/opened.jsonl" | grep -E "agreement|disagree" || true
