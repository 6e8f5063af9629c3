"""How far a name-only referral could go on a gen.py --dirty county (issue 7's last bullet).

For every household that hedui finds `eligible` on the dirty data while reference.py finds it
not eligible on the clean twin (a wrong eligible), the damaged source rows of its persons
(truth_dirty.parquet) that hedui left unlinked are the rows it missed. Suppose an oracle told
us which rows those are, and we referred every eligible household that has a member bearing
such a row's name (the row carries nothing else that tells them apart). This prints how many
households that oracle rule refers, and the agreement with the reference that results. Any
rule that does not know the culprit rows refers at least as many.

    python benches/name_only_bound.py DIRTY_DIR OPENED_JSONL CLEAN_REFERENCE_PARQUET

DIRTY_DIR: gen.py --dirty output; OPENED_JSONL: `hedui open` of the batch's reports on it;
CLEAN_REFERENCE_PARQUET: reference.py on the clean twin. Needs polars.
"""
import json
import sys

import polars as pl


def main():
    data, opened, reference = sys.argv[1:4]
    mine = {}
    linked = {}
    for line in open(opened, encoding="utf-8"):
        r = json.loads(line)
        mine[r["household_id"]] = r["determination"]
        linked[r["household_id"]] = {
            (s["source"], rec["row"]) for s in r["sources"] for rec in s.get("records", [])
        }
    det = pl.DataFrame({"household_id": list(mine), "mine": list(mine.values())})
    ref = pl.read_parquet(reference).select("household_id", pl.col("determination").alias("ref"))
    both = ref.join(det, on="household_id")
    n = both.height
    diff = both.filter(pl.col("mine") != pl.col("ref")).height
    budget = int(n * 0.005) - diff
    wrong = both.filter((pl.col("mine") == "eligible") & (pl.col("ref") != "eligible"))
    persons = pl.concat(
        [
            pl.read_parquet(f"{data}/{t}.parquet").select("household_id", "id_number", "name")
            for t in ("members", "supporters")
        ]
    )
    eligible_persons = persons.join(det.filter(pl.col("mine") == "eligible"), on="household_id")
    truth = pl.read_parquet(f"{data}/truth_dirty.parquet")
    sources = {}
    culprits = 0
    referred = set()
    for (hh,) in wrong.select("household_id").iter_rows():
        ids = persons.filter(pl.col("household_id") == hh)["id_number"].to_list()
        for src, row in truth.filter(pl.col("true_id_number").is_in(ids)).select("source", "row").iter_rows():
            if (src, row) in linked[hh]:
                continue
            if src not in sources:
                sources[src] = pl.read_parquet(f"{data}/{src}.parquet").select("name")
            name = sources[src]["name"][row]
            culprits += 1
            referred |= set(eligible_persons.filter(pl.col("name") == name)["household_id"].to_list())
    new = len(referred - set(wrong["household_id"].to_list()))
    after = diff + new
    print(
        f"households {n}; differences {diff} ({100 * (n - diff) / n:.3f} %); wrong eligible {wrong.height}; "
        f"room to 99.5 %: {budget} more referrals"
    )
    print(
        f"oracle name-only rule: {culprits} unlinked culprit rows; refers {len(referred)} eligible households "
        f"({new} of them agree with the reference now and would not); differences {after} ({100 * (n - after) / n:.3f} %)"
    )


if __name__ == "__main__":
    main()
