#!/usr/bin/env bash
# Dirty-county anchor for the error-tolerant linker (issue 7): Splink's fallback
# (splink_synthetic.py) and hedui's batch second pass on the same gen.py --dirty county, in the
# same run, plus hedui's determinations on the dirty data against reference.py's on the clean
# twin (compare.py).
#
#   benches/link-county.sh [DIRTY_DIR] [CLEAN_REFERENCE] [PEERS_DIR]
# defaults: /tmp/hedui-data/county-dirty, /tmp/hedui-data/county-reference.parquet, ../shared/peers.
# Needs /tmp/peers-venv (requirements-splink.txt) and /tmp/ref-venv (requirements.txt); the
# dirty county: python gen.py --households 30000 --dirty 0.02 --out /tmp/hedui-data/county-dirty
# and the clean twin's reference: python reference.py --data /tmp/hedui-data/county --as-of 2026-11-01 \
#   --out /tmp/hedui-data/county-reference.parquet
#
# Environment: SKIP_SPLINK=1 skips Splink. FRONTIER="3 -2.5 -4 -6 -10" also reruns the batch once
# per possible_match_weight (bits; the bundled policy with that one value changed) and prints,
# for each, the agreement with the clean twin and the wrong `eligible` left: the trade-off
# between false referrals and missed rows that the threshold can buy (README, issue 7).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
data="${1:-/tmp/hedui-data/county-dirty}"
ref="${2:-/tmp/hedui-data/county-reference.parquet}"
peers="${3:-$here/../shared/peers}"
hedui="${HEDUI:-${CARGO_TARGET_DIR:-$here/target}/release/hedui}"
py="${PEERS_PYTHON:-/tmp/peers-venv/bin/python}"
refpy="${REF_PYTHON:-/tmp/ref-venv/bin/python}"
[ -f "$data/truth_dirty.parquet" ] || { echo "no $data/truth_dirty.parquet (gen.py --dirty 0.02)" >&2; exit 2; }
work="$(mktemp -d /tmp/hedui-link-county.XXXXXX)"
trap 'rm -rf "$work"' EXIT
as_of="$("$refpy" -c "import json,sys; print(json.load(open(sys.argv[1]))['as_of'])" "$data/manifest.json")"

if [ -z "${SKIP_SPLINK:-}" ]; then
  echo "== Splink fallback (splink_synthetic.py)"
  "$py" "$peers/splink_synthetic.py" --data "$data" --threads "$(nproc)" > "$work/splink.json"
  "$refpy" -c "import json,sys; s=json.load(open(sys.argv[1])); b=s['best']; print('splink best: P %.4f R %.4f F1 %.4f; missing-key R %s; %.1f s, %s MiB' % (b['precision'], b['recall'], b['f1'], b['by_kind'].get('missing',{}).get('recall'), s['seconds']['total'], s['peak_rss_mib']))" "$work/splink.json"
fi

echo "== hedui batch (exact + error-tolerant pass)"
"$hedui" keygen --out "$work/keys" > /dev/null
/usr/bin/time -f "hedui batch wall %e s, peak RSS %M KiB" "$hedui" batch --caseload "$data" --sources "$data" \
  --recipient "$work/keys/civil.pub" --out "$work/run" --as-of "$as_of" > "$work/batch.txt" || true
"$hedui" open --key "$work/keys/civil.key" "$work/run/reports.jsonl" > "$work/opened.jsonl" 2>/dev/null || true
"$refpy" -c "import json,sys; s=json.load(open(sys.argv[1])); print('timings ms', s['timings_ms']); print('determinations', s['determination'])" "$work/run/summary.json"
"$refpy" "$here/benches/link_county_score.py" "$data" "$work/opened.jsonl" | tee "$work/hedui.json"

echo "== determinations on the dirty data vs reference.py on the clean twin"
"$refpy" "$peers/compare.py" --reference "$ref" --reports "$work/opened.jsonl" || true

echo "== the bound on a name-only referral of the wrong eligibles (benches/name_only_bound.py)"
"$refpy" "$here/benches/name_only_bound.py" "$data" "$work/opened.jsonl" "$ref" || true

for w in ${FRONTIER:-}; do
  echo "== possible_match_weight = $w"
  sed "s/^possible_match_weight = .*/possible_match_weight = $w/" "$here/policies/gansu-illustrative-2026.toml" > "$work/policy-$w.toml"
  grep -q "^possible_match_weight = $w\$" "$work/policy-$w.toml" || { echo "could not set the weight" >&2; exit 2; }
  rm -rf "$work/run-w"
  "$hedui" batch --caseload "$data" --sources "$data" --recipient "$work/keys/civil.pub" --out "$work/run-w" \
    --as-of "$as_of" --policy "$work/policy-$w.toml" > /dev/null 2>&1 || true
  "$hedui" open --key "$work/keys/civil.key" "$work/run-w/reports.jsonl" > "$work/opened-w.jsonl" 2>/dev/null || true
  "$refpy" "$here/benches/name_only_bound.py" "$data" "$work/opened-w.jsonl" "$ref" || true
done
