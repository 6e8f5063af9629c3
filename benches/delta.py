#!/usr/bin/env python3
"""A realistic nightly source delta for `hedui batch --previous DIR --delta DIR`.

    python benches/delta.py DATA_DIR DELTA_DIR [--fraction 0.01] [--end END_DIR] [--seed 7]

DATA_DIR holds the previous night's extracts (gen.py or `hedui gen`, Parquet or CSV). A
fraction of the residents (default 1 %, drawn from household_registration) changed since:
half of their rows of every source change (amounts ×1.1 + 100 yuan), a quarter are removed
(an account closed, a property sold) and each removed row comes back as a new row at half
the amount (a new account). DELTA_DIR gets one `<source>.parquet` (or `.csv`) per source in the delta format
(README "Incremental runs", schemas/delta.json: `op`, `row`, then the §2 columns; Parquet
when the extracts are Parquet, else CSV). With
--end, END_DIR gets the end state the delta describes (in the extracts' format, Parquet or CSV; adds fill the freed rows in
ascending order, so no row moves) plus a copy of the caseload, for a full run to compare.

Needs duckdb (the reference venv: /tmp/ref-venv/bin/python).
"""
import argparse
import os
import shutil

import duckdb

SOURCES = [
    "household_registration", "tax", "social_insurance", "real_estate", "market_entity",
    "provident_fund", "vehicle_vessel", "bank", "commercial_insurance", "securities",
    "internet_finance", "medical_insurance",
]
NOT_MONEY = {"area_m2", "share_pct"}


def locate(d, stem):
    for ext in ("parquet", "csv"):
        p = os.path.join(d, f"{stem}.{ext}")
        if os.path.exists(p):
            return p, ext
    return None, None


def scan(path, ext):
    if ext == "parquet":
        return f"read_parquet('{path}', file_row_number=true)"
    return f"(select *, row_number() over () - 1 as file_row_number from read_csv('{path}', all_varchar=true, header=true))"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("delta")
    ap.add_argument("--fraction", type=float, default=0.01)
    ap.add_argument("--end")
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    os.makedirs(a.delta, exist_ok=True)
    con = duckdb.connect()
    reg, ext = locate(a.data, "household_registration")
    # residents who changed: a deterministic sample by hash of the ID and the seed
    modulus = max(1, round(1 / a.fraction))
    con.execute(
        f"create temp table changed as select distinct id_number from {scan(reg, ext)} "
        f"where hash(id_number || '{a.seed}') % {modulus} = 0"
    )
    total = 0
    for src in SOURCES:
        path, ext = locate(a.data, src)
        if path is None:
            continue
        cols = con.execute(f"describe select * from {scan(path, ext)}").fetchall()
        names = [c[0] for c in cols if c[0] != "file_row_number"]
        money = [c[0] for c in cols if c[1].startswith("DECIMAL") and c[0] not in NOT_MONEY]
        if ext == "csv":
            money = [n for n in names if n in ("gross_income", "tax_paid", "amount", "balance",
                     "market_value", "cash_balance", "cash_value", "annual_premium",
                     "subscribed_capital", "purchase_price", "monthly_deposit", "total_cost",
                     "out_of_pocket")]

        def scaled(f, add):
            out = []
            for n in names:
                if n in money:
                    out.append(f"cast(round(cast({n} as decimal(18,2)) * {f} + {add}, 2) as decimal(18,2)) as {n}")
                else:
                    out.append(n)
            return ", ".join(out)

        con.execute(f"create or replace temp table rows_ as select * from {scan(path, ext)} "
                    f"where id_number in (select id_number from changed)")
        delta_sql = f"""
            select op, row, {", ".join(names)} from (
              select 0 as k, file_row_number as fr, 'change' as op, cast(file_row_number as varchar) as row, {scaled(1.1, 100)}
                from rows_ where file_row_number % 4 in (0, 1)
              union all
              select 1, file_row_number, 'remove', cast(file_row_number as varchar), {", ".join(names)}
                from rows_ where file_row_number % 4 = 2
              union all
              select 2, file_row_number, 'add', null, {scaled(0.5, 0)}
                from rows_ where file_row_number % 4 = 2
            ) order by k, fr
        """
        # the delta in the extract's own format (Parquet keeps the column types)
        out = os.path.join(a.delta, f"{src}.{ext}")
        fmt = "(format parquet)" if ext == "parquet" else "(header, delimiter ',')"
        con.execute(f"copy ({delta_sql}) to '{out}' {fmt}")
        n = con.execute(f"select count(*) from ({delta_sql})").fetchone()[0]
        total += n
        if a.end:
            os.makedirs(a.end, exist_ok=True)
            # end state: changes in place; each removed row's slot takes the add made from it
            # (adds fill freed rows in ascending order: the same order here)
            end_sql = f"""
                select {", ".join(names)} from (
                  select file_row_number as r, {", ".join(names)} from {scan(path, ext)}
                   where file_row_number not in (select file_row_number from rows_ where file_row_number % 4 in (0, 1, 2))
                  union all
                  select file_row_number, {scaled(1.1, 100)} from rows_ where file_row_number % 4 in (0, 1)
                  union all
                  select file_row_number, {scaled(0.5, 0)} from rows_ where file_row_number % 4 = 2
                ) order by r
            """
            fmt = "(format parquet)" if ext == "parquet" else "(header, delimiter ',')"
            con.execute(f"copy ({end_sql}) to '{os.path.join(a.end, src + '.' + ext)}' {fmt}")
    if a.end:
        for t in ("households", "members", "supporters"):
            p, ext = locate(a.data, t)
            shutil.copy(p, os.path.join(a.end, f"{t}.{ext}"))
    persons = con.execute("select count(*) from changed").fetchone()[0]
    print(f"delta: {persons} residents changed, {total} delta rows in {a.delta}")


if __name__ == "__main__":
    main()
