"""pyadvt.report.csv_tables.write_csv: what the csv module reads back, written atomically."""

from __future__ import annotations

import csv

from pyadvt.report.csv_tables import write_csv


def test_round_trip_and_no_temporaries(tmp_path):
    rows = [["natural", "head", 10, 0, 0.5], ["at_l2", 1, 25, 1, None], ["a,b", "q\"uote", 3, 2, 1e-9]]
    path = write_csv(tmp_path / "sub" / "t.csv", ["source", "blocks", "size", "seed", "accuracy"], rows)
    back = list(csv.reader(open(path, newline="")))
    assert back[0] == ["source", "blocks", "size", "seed", "accuracy"]
    assert back[1:] == [["" if v is None else str(v) for v in r] for r in rows]
    write_csv(path, ["x"], iter([[1]]))                    # replaced, rows may be an iterator
    assert list(csv.reader(open(path, newline=""))) == [["x"], ["1"]]
    assert sorted(p.name for p in path.parent.iterdir()) == ["t.csv"]
