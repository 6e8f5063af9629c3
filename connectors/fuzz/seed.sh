#!/bin/sh
# Build the fuzz corpus: the shared real-world fault files (tests/data/cases, read without a
# field map) and the first lines of each table of a small `hedui gen` county (read through
# its field map), each prefixed with the byte that picks the table (see the target's docs),
# plus the same table re-encoded to GB18030 and UTF-16LE, and the seeds/ kept here.
# Usage (from connectors/fuzz): ./seed.sh GEN_DIR
#   GEN_DIR: CSV tables of a small county, e.g. `hedui gen --households 40 --format csv --out
#   /tmp/small` or `python ../../../shared/peers/gen.py --households 40 --format csv --out …`
set -eu
GEN=$1
OUT=corpus/text_normalise
mkdir -p "$OUT"
for f in ../../tests/data/cases/*.csv ../../tests/data/cases/*.txt; do
  { printf '\000'; cat "$f"; } > "$OUT/case-$(basename "$f")"
done
i=1
for t in households members supporters household_registration tax social_insurance \
         real_estate market_entity provident_fund vehicle_vessel bank commercial_insurance \
         securities internet_finance medical_insurance; do
  b=$(printf '\\%03o' "$i")
  { printf "$b"; head -n 25 "$GEN/$t.csv"; } > "$OUT/gen-$t.csv"
  { printf "$b"; head -n 25 "$GEN/$t.csv" | iconv -f UTF-8 -t GB18030; } > "$OUT/gen-$t-gb18030.csv"
  { printf "$b"; printf '\377\376'; head -n 25 "$GEN/$t.csv" | sed 's/,/\t/g' | iconv -f UTF-8 -t UTF-16LE; } > "$OUT/gen-$t-utf16.txt"
  i=$((i + 1))
done
cp seeds/* "$OUT/" 2>/dev/null || true
echo "corpus: $(ls "$OUT" | wc -l) files in $OUT"
