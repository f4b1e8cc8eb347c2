import contextlib
import io
import json

import pandas as pd
import pytest

from star.cli import main
from star.eval.tables import MetricsFileError, TableError, make_table, parse_column

KEYS = ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr", "Recall", "Precision", "F1")


def metrics_file(path, window=30, scale=1.0, **meta):
    """A file as `star evaluate --json` writes it (the fields tables read); window "captioning": a file of
    `--protocol captioning` (no window, caption metrics only)."""
    metrics = {k: round(scale * (i + 1) / 100, 6) for i, k in enumerate(KEYS)}
    if window == "captioning":
        data = {"meta": meta, "protocol": "captioning", "window": None, "metrics": dict(list(metrics.items())[:7])}
    else:
        data = {"meta": meta, "window": window, "seed": 0, "metrics": metrics, "counts": {}}
    path.write_text(json.dumps(data))
    return path


def test_table1_rows_columns_and_scale(tmp_path):
    a = metrics_file(tmp_path / "a.json", method="STaR", encoder="Baidu", fps=1)
    b = metrics_file(tmp_path / "b.json", scale=2, method="SDVC", encoder="ResNET", fps=2)
    table = make_table([a, b])
    assert list(table.columns) == ["Method", "Encoder", "F", "B4@30", "M@30", "R-L@30", "C@30", "Recall",
                                   "Precision", "F1"]
    assert table["Method"].tolist() == ["STaR", "SDVC"] and table["F"].tolist() == ["1", "2"]
    # x100: Bleu_4 is the 4th key -> 0.04 -> 4.00; METEOR 5th
    assert table["B4@30"].tolist() == [4.0, 8.0] and table["M@30"].tolist() == [5.0, 10.0]
    assert table["F1"].tolist() == [10.0, 20.0]


def test_windows_of_one_method_share_a_row_and_filters_split_settings(tmp_path):
    files = [metrics_file(tmp_path / "w30.json", 30, method="STaR"),
             metrics_file(tmp_path / "w5.json", 5, scale=0.5, method="STaR"),
             metrics_file(tmp_path / "gt.json", 30, scale=3, method="STaR", proposals="gt")]
    table = make_table(files, "Method,M@30?proposals=,M@5,B@4=B4@30?proposals=gt")
    assert table.to_dict("records") == [{"Method": "STaR", "M@30": 5.0, "M@5": 2.5, "B@4": 12.0}]
    with pytest.raises(TableError, match="2 files fit"):
        make_table(files, "Method,M@30")  # the spotting and the ground-truth runs both have window 30


def test_table4_is_the_captioning_subtask_with_dense_extras(tmp_path):
    files = [metrics_file(tmp_path / "cap.json", "captioning", method="STaR"),
             metrics_file(tmp_path / "gt5.json", 5, scale=2, method="STaR"),
             metrics_file(tmp_path / "spots.json", 30, scale=3, method="STaR")]
    table = make_table(files, "table4")
    assert list(table.columns) == ["Method", "B4", "M", "R-L", "C", "B4 dense@5", "M dense@5", "R-L dense@5",
                                   "C dense@5"]
    assert table.iloc[0].tolist() == ["STaR", 4.0, 5.0, 6.0, 7.0, 8.0, 10.0, 12.0, 14.0]
    # a window-less column takes any protocol; "@captioning" only the captioning subtask's file
    assert make_table(files[:1], "Method,B4@captioning,B4@30")["B4@30"].isna().all()
    b = tmp_path / "b.json"
    b.write_text(json.dumps({"meta": {"method": "Delta"}, "protocol": "captioning", "window": None,
                             "metrics": {"Bleu_4": 0.0614}}))
    with pytest.raises(MetricsFileError, match="b.json: no metric 'METEOR'"):
        make_table([files[0], b], "table4")


def test_table4_columns_without_window_and_empty_cells(tmp_path):
    a = metrics_file(tmp_path / "a.json", 30, method="Ours")
    b = tmp_path / "b.json"
    b.write_text(json.dumps({"meta": {"method": "Delta"}, "window": 30, "metrics": {"Bleu_4": 0.0614}}))
    table = make_table([a, b], "Method,B4,M@5")
    assert table["B4"].tolist() == [4.0, 6.14]
    assert table["M@5"].isna().all()


def test_bad_column_specs_and_files_are_named(tmp_path):
    with pytest.raises(TableError, match="unknown metric 'BLEU'"):
        parse_column("BLEU@30")
    with pytest.raises(TableError, match="whole number"):
        parse_column("M@thirty")
    assert parse_column("M@captioning").window == "captioning"
    with pytest.raises(TableError, match="no metric column"):
        make_table([metrics_file(tmp_path / "a.json")], "Method,Encoder")
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(MetricsFileError, match="x.json: not a `star evaluate --json` file"):
        make_table([tmp_path / "x.json"])
    with pytest.raises(MetricsFileError, match="nope.json: metrics file does not exist"):
        make_table([tmp_path / "nope.json"])


def test_csv_and_markdown_written_atomically(tmp_path):
    a = metrics_file(tmp_path / "a.json", method="STaR", encoder="Baidu", fps=1)
    out = tmp_path / "results" / "table1.csv"
    out.parent.mkdir()
    out.write_text("old")
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main(["tables", "--out", str(out), str(a)]) == 0
    assert pd.read_csv(out).iloc[0]["C@30"] == 7.0
    assert out.read_text().splitlines()[1] == "STaR,Baidu,1,4.00,5.00,6.00,7.00,8.00,9.00,10.00"
    md = out.with_suffix(".md").read_text().splitlines()
    assert md[0].startswith("| Method") and md[2].endswith("| 10.00 |") and md[2] in stdout.getvalue()
    assert md[1].startswith("|:---") and md[1].endswith("--:|")  # metadata left, metrics right-aligned
    assert sorted(p.name for p in out.parent.iterdir()) == ["table1.csv", "table1.md"]  # no temp files left
    before = out.read_bytes()
    with contextlib.redirect_stderr(io.StringIO()) as err:
        assert main(["tables", "--out", str(out), "--columns", "Method,Q@30", str(a)]) == 1
    assert "unknown metric 'Q'" in err.getvalue() and out.read_bytes() == before


def test_intervals_beside_every_metric_in_csv_and_markdown(tmp_path):
    a = metrics_file(tmp_path / "a.json", method="STaR", encoder="Baidu", fps=1)
    data = json.loads(a.read_text())
    data["ci"] = {"level": 0.95, "metrics": {k: [v - 0.01, v + 0.03] for k, v in data["metrics"].items()}}
    a.write_text(json.dumps(data))
    b = metrics_file(tmp_path / "b.json", method="Delta", encoder="Baidu", fps=1)  # no bootstrap: no bounds
    table = make_table([a, b], "Method,C@30,F1")
    assert list(table.columns) == ["Method", "C@30", "C@30_lo", "C@30_hi", "F1", "F1_lo", "F1_hi"]
    assert table.iloc[0][["C@30", "C@30_lo", "C@30_hi"]].tolist() == [7.0, 6.0, 10.0]
    assert table.iloc[1][["C@30_lo", "C@30_hi"]].isna().all()
    out = tmp_path / "t.csv"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["tables", "--out", str(out), "--columns", "Method,C@30,F1", str(a), str(b)]) == 0
    assert out.read_text().splitlines()[1] == "STaR,7.00,6.00,10.00,10.00,9.00,13.00"
    md = out.with_suffix(".md").read_text().splitlines()
    assert [c.strip() for c in md[0].split("|")[1:-1]] == ["Method", "C@30", "F1"]  # bounds folded into cells
    assert [c.strip() for c in md[2].split("|")[1:-1]] == ["STaR", "7.00 ± 2.00", "10.00 ± 2.00"]
    assert [c.strip() for c in md[3].split("|")[1:-1]] == ["Delta", "7.00", "10.00"]
    # a table without any interval keeps its plain columns (metric files of older runs)
    assert list(make_table([b], "Method,C@30").columns) == ["Method", "C@30"]
