#!/usr/bin/env python3
"""Score hedui's error-tolerant links on a gen.py --dirty county against truth_dirty.parquet.

Input: the county folder (members, supporters, truth_dirty.parquet) and `hedui open` output
(JSON lines). A damaged row is a positive when its true ID is a caseload person's and its key
does not link exactly (kinds typo, missing; legacy15 / lowercase_x / spaces are repaired
exactly by the first pass). A row hedui links (`fuzzy_links`) is a true link when the person
it went to (household + masked ID) holds the true ID. Prints one JSON line: P/R/F1 on damaged
rows, by kind, and a sweep over match weights (what the thresholds would give).

Kinds of `hedui gen --wrong-valid-ids` (valid_same_day, valid_other_resident: the row keyed
with another person's valid ID) are never linked by design, only shown: `wrong_valid_ids`
reports, per kind, the damaged rows, those shown as a possible match of the true person
(`shown`), possible matches of anyone else (`shown_wrong`) and links (`linked`, should be 0).
"""
import json, sys
from collections import defaultdict
import polars as pl

data, opened = sys.argv[1], sys.argv[2]
def mask(s): return s[:4] + "*" * (len(s) - 8) + s[-4:]
ms = pl.read_parquet(f"{data}/members.parquet", columns=["household_id", "id_number"])
ss = pl.read_parquet(f"{data}/supporters.parquet", columns=["household_id", "id_number"])
persons = pl.concat([ms, ss])
hh_of = defaultdict(set)
for h, i in persons.iter_rows():
    hh_of[i.strip().upper()].add(h)
t = pl.read_parquet(f"{data}/truth_dirty.parquet")
truth = {(s, r): (i, k) for s, r, i, k in t.select("source", "row", "true_id_number", "kind").iter_rows()}
positives = defaultdict(int)
for (s, r), (i, k) in truth.items():
    if i in hh_of and k in ("typo", "missing"):
        positives[k] += 1
# legacy15 / lowercase_x / spaces keys link exactly in reference.py's normalisation (and so
# are not in Splink's residual); hedui refuses a few of them (15-digit numbers with sequence
# 996-999: ambiguous century) and links them in the second pass: scored apart.
EXACT_KINDS = ("legacy15", "lowercase_x", "spaces")
n_pos = sum(positives.values())

links = {}  # (source,row) -> (weight, correct, name_only)
possible = {}
for line in open(opened):
    rep = json.loads(line)
    ps = rep.get("persons", [])
    for f in rep.get("fuzzy_links", []):
        key = (f["source"], f["row"])
        p = ps[f["person"]]
        ti = truth.get(key)
        ok = ti is not None and ti[0] in hh_of and rep["household_id"] in hh_of[ti[0]] and mask(ti[0]) == p["id_number_masked"]
        links[key] = (f["weight"], ok, f["name_only"], ti[1] if ti else "none")
    for m in rep.get("possible_matches", []):
        key = (m["source"], m["row"])
        p = ps[m["person"]]
        ti = truth.get(key)
        ok = ti is not None and ti[0] in hh_of and mask(ti[0]) == p["id_number_masked"]
        possible[key] = (m.get("score"), ok, ti[1] if ti else "none")

def prf(sel):
    tp = sum(1 for v in sel if v[1]); n = len(sel)
    p = tp / n if n else 0.0; r = tp / n_pos if n_pos else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0, "tp": tp, "fp": n - tp, "fn": n_pos - tp}

apart = [v for v in links.values() if v[3] in EXACT_KINDS]
vals = [v for v in links.values() if v[3] not in EXACT_KINDS]
by_kind = {}
for k in ("typo", "missing"):
    sel = [v for v in vals if v[3] == k]
    tp = sum(1 for v in sel if v[1])
    by_kind[k] = {"positives": positives[k], "linked": len(sel), "tp": tp, "recall": round(tp / positives[k], 4) if positives[k] else None}
sweep = {}
for th in (0, 2, 4, 6, 8, 10, 12, 15, 20):
    sel = [v for v in vals if v[0] >= th]
    sweep[th] = prf(sel)
name_only = [v for v in vals if v[2]]
WRONG_VALID = ("valid_same_day", "valid_other_resident")
wrong_valid = {}
for k in WRONG_VALID:
    rows = [key for key, (i, kk) in truth.items() if kk == k and i in hh_of]
    if not rows:
        continue
    shown = sum(1 for key in rows if key in possible and possible[key][1])
    wrong_valid[k] = {"rows": len(rows), "shown": shown,
                      "shown_recall": round(shown / len(rows), 4),
                      "shown_wrong": sum(1 for key in rows if key in possible and not possible[key][1]),
                      "linked": sum(1 for key in rows if key in links)}
print(json.dumps({
    "wrong_valid_ids": wrong_valid,
    "positives": n_pos, "positives_by_kind": dict(positives),
    "hedui_match": prf(vals), "by_kind": by_kind,
    "name_only_links": {"n": len(name_only), "tp": sum(1 for v in name_only if v[1])},
    "refused_exact_kinds_linked": {"n": len(apart), "tp": sum(1 for v in apart if v[1])},
    "false_links_by_kind_weight": sorted([(v[3], v[2], round(v[0])) for v in vals if not v[1] and v[0] >= 0])[:60],
    "possible_matches": {"rows": len(possible), "of_which_true": sum(1 for v in possible.values() if v[1]),
                          "households": None},
    "sweep_by_min_weight": sweep,
}))
