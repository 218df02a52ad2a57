"""Derive the condo example's sales from modelrun's vendored King County sales.

The condo team's real data lives in its own bucket; this example needs a stand-in of the same
shape. It takes the townhouses (attached units, the closest the source has to condos), keeps a
deterministic sample of 5,000 (the smallest SHA-256 digests of the sale id: no RNG whose
sequence could change between Python versions), drops the lot size and the use type, renames a
few columns as an assessor's condo extract might name them, and writes them sorted by date and
id, gzip'd with no timestamp so the same input gives the same bytes.

    python3 data/make_sales.py [path/to/seattle_sales.csv.xz] [data/sales.csv.gz]
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import lzma
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# In modelrun's repository the source sits two levels above the example.
SOURCE = HERE.parents[2] / "model_container" / "data" / "seattle_sales.csv.xz"
TARGET = HERE / "sales.csv.gz"
SAMPLE = 5_000
# source column -> this extract's column, in the output's order
COLUMNS = {
    "sale_id": "sale_id",
    "pinx": "unit_pin",
    "sale_price": "sale_price",
    "sale_date": "sale_date",
    "area": "market_area",
    "tot_sf": "living_sf",
    "bldg_grade": "bldg_grade",
    "beds": "beds",
    "baths": "baths",
    "age": "age",
    "eff_age": "eff_age",
    "wfnt": "waterfront",
    "longitude": "longitude",
    "latitude": "latitude",
}


def condo_sales(source: Path) -> list[dict[str, str]]:
    with lzma.open(source, "rt", encoding="utf-8", newline="") as f:
        units = [row for row in csv.DictReader(f) if row["use_type"] == "townhouse" and int(row["sale_price"]) > 0]
    sample = sorted(units, key=lambda row: hashlib.sha256(row["sale_id"].encode()).hexdigest())[:SAMPLE]
    sample.sort(key=lambda row: (row["sale_date"], row["sale_id"]))
    return [{new: row[old] for old, new in COLUMNS.items()} for row in sample]


def write(rows: list[dict[str, str]], target: Path) -> bytes:
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=list(COLUMNS.values()), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    raw = text.getvalue().encode("utf-8")
    with target.open("wb") as f, gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0, compresslevel=9) as gz:
        gz.write(raw)
    return raw


def main(argv: list[str]) -> None:
    source = Path(argv[1]) if len(argv) > 1 else SOURCE
    target = Path(argv[2]) if len(argv) > 2 else TARGET
    rows = condo_sales(source)
    raw = write(rows, target)
    print(f"{len(rows)} sales, {rows[0]['sale_date']} to {rows[-1]['sale_date']} -> {target}")
    print(f"uncompressed sha256 {hashlib.sha256(raw).hexdigest()}")


if __name__ == "__main__":
    main(sys.argv)
