"""`star tables`: the paper's metric tables, as CSV plus Markdown, from `star evaluate --json` metric files.

    star tables --out results/table1.csv METRICS.json...                  # Table 1's columns
    star tables --out results/table4.csv --columns table4 METRICS.json...
    star tables --out t.csv --columns "Method,Encoder,F,M@30,M@5,M@captioning,F1@30" METRICS.json...

A column is either a metadata column -- Method, Encoder, F (the `--method/--encoder/--fps` of `star evaluate`)
or any `--meta` key -- or a metric column `NAME[@WINDOW]`: NAME is B1..B4, M, R-L, C, Recall, Precision, F1 or an
official key (METEOR, ...), WINDOW the `--window` a dense evaluation used, or `captioning` for the captioning
subtask's files (`star evaluate --protocol captioning`). `HEADER=SOURCE` names a column
(`B@4=B4@30`), and `SOURCE?KEY=VALUE&...` takes the metric only from files whose metadata match (to put two
settings with the same window in one row; `?KEY=` matches files without KEY). Metric files with the same
metadata-column values form one row, in the order given; metrics are shown x100 with two decimals, as in the paper.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from star.errors import InputError
from star.provenance import atomic_path

METRIC_NAMES = {"B1": "Bleu_1", "B2": "Bleu_2", "B3": "Bleu_3", "B4": "Bleu_4", "M": "METEOR", "R-L": "ROUGE_L",
                "R": "ROUGE_L", "C": "CIDEr", "Recall": "Recall", "Precision": "Precision", "F1": "F1"}
METRIC_NAMES.update({v: v for v in list(METRIC_NAMES.values())})
META_NAMES = {"Method": "method", "Encoder": "encoder", "F": "fps"}
CAPTIONING = "captioning"  # the window-less protocol of the captioning subtask
PRESETS = {
    "table1": "Method,Encoder,F,B4@30,M@30,R-L@30,C@30,Recall,Precision,F1",
    # the paper's Table 4 is the captioning subtask; the dense evaluator at the same anchors (5 s) as extra columns
    "table4": "Method,B4=B4@captioning,M=M@captioning,R-L=R-L@captioning,C=C@captioning,"
              "B4 dense@5=B4@5,M dense@5=M@5,R-L dense@5=R-L@5,C dense@5=C@5",
    "table6": "G.,P.,SSS inputs,B4@30,M@30,R-L@30,C@30,F1",
}


class MetricsFileError(InputError):
    """A metrics file that is missing or was not written by `star evaluate --json`."""


class TableError(InputError):
    """A column specification, or metric files that do not fit it."""


@dataclass(frozen=True)
class Column:
    header: str
    meta: str | None = None                  # metadata key of a metadata column
    metric: str | None = None                # official metric key of a metric column
    window: int | str | None = None          # only files evaluated with this window ("captioning": that protocol)
    where: tuple[tuple[str, str], ...] = ()  # only files whose metadata hold these values


def parse_column(spec: str) -> Column:
    """'B4@30' | 'Method' | 'HEADER=SOURCE' | 'SOURCE?KEY=VALUE&KEY=VALUE' -> Column."""
    front, _, query = spec.strip().partition("?")
    header, named, source = front.partition("=")
    source = source if named else header
    name, at, window = source.partition("@")
    where = tuple(tuple(kv.split("=", 1)) for kv in query.split("&") if kv) if query else ()
    if any(len(kv) != 2 for kv in where):
        raise TableError(f"column {spec!r}: a filter is KEY=VALUE")
    if name in METRIC_NAMES:
        if at and not (window.isdigit() or window == CAPTIONING):
            raise TableError(f"column {spec!r}: the window after '@' must be a whole number of seconds or "
                             f"{CAPTIONING!r}")
        window = (int(window) if window.isdigit() else window) if at else None
        return Column(header, metric=METRIC_NAMES[name], window=window, where=where)
    if at or where:
        raise TableError(f"column {spec!r}: unknown metric {name!r}; one of {sorted(METRIC_NAMES)}")
    return Column(header, meta=META_NAMES.get(name, name))


def parse_columns(spec: str) -> list[Column]:
    """A preset name (table1, table4, table6) or comma-separated column specs."""
    columns = [parse_column(s) for s in PRESETS.get(spec, spec).split(",") if s.strip()]
    if not any(c.metric for c in columns):
        raise TableError(f"columns {spec!r} hold no metric column")
    return columns


def load_metrics(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise MetricsFileError(f"{path}: metrics file does not exist")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise MetricsFileError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("metrics"), dict) or "window" not in data:
        raise MetricsFileError(f"{path}: not a `star evaluate --json` file (no 'metrics' and 'window')")
    window = CAPTIONING if data.get("protocol") == CAPTIONING else data["window"]
    ci = data.get("ci", {}).get("metrics", {}) if isinstance(data.get("ci"), dict) else {}
    return {"path": path, "meta": data.get("meta", {}), "window": window, "metrics": data["metrics"], "ci": ci}


def meta_text(value) -> str:
    if value is None:
        return ""
    return f"{value:g}" if isinstance(value, float) else str(value)


LO, HI = "_lo", "_hi"  # suffixes of a metric column's interval bounds


def cell(column: Column, files: list[dict], row_name: str) -> tuple[float | None, float | None, float | None]:
    """(metric, interval low, interval high) x100 of the one file of the row that fits the column; None where
    there is no such file, and for the bounds where that file has no interval."""
    fits = [f for f in files
            if (column.window is None or f["window"] == column.window)
            and all(meta_text(f["meta"].get(k)) == v for k, v in column.where)]
    if len(fits) > 1:
        raise TableError(f"column {column.header!r} of row {row_name!r}: {len(fits)} files fit "
                         f"({', '.join(str(f['path']) for f in fits)}); tell them apart with @WINDOW or ?KEY=VALUE")
    if not fits:
        return None, None, None
    if column.metric not in fits[0]["metrics"]:
        raise MetricsFileError(f"{fits[0]['path']}: no metric {column.metric!r}")
    value = round(100 * float(fits[0]["metrics"][column.metric]), 2)
    bounds = fits[0]["ci"].get(column.metric)
    if bounds is None:
        return value, None, None
    return value, *(round(100 * float(b), 2) for b in bounds)


def make_table(metric_files: list[str | Path], columns: str | list[Column] = "table1") -> pd.DataFrame:
    """One row per distinct metadata-column values (first-seen order); metric cells x100, 2 decimals, each
    followed by its interval's HEADER_lo and HEADER_hi columns where any file of the column has one."""
    if isinstance(columns, str):
        columns = parse_columns(columns)
    files = [load_metrics(p) for p in metric_files]
    meta_columns = [c for c in columns if c.meta]
    rows: dict[tuple[str, ...], list[dict]] = {}
    for f in files:
        rows.setdefault(tuple(meta_text(f["meta"].get(c.meta)) for c in meta_columns), []).append(f)
    records = []
    for key, group in rows.items():
        meta = dict(zip((c.meta for c in meta_columns), key, strict=True))
        name = " / ".join(k for k in key if k) or str(group[0]["path"])
        record = {}
        for c in columns:
            if c.meta:
                record[c.header] = meta[c.meta]
            else:
                record[c.header], record[c.header + LO], record[c.header + HI] = cell(c, group, name)
        records.append(record)
    headers = []
    for c in columns:
        with_ci = c.metric and any(r[c.header + LO] is not None for r in records)
        headers += [c.header, c.header + LO, c.header + HI] if with_ci else [c.header]
    table = pd.DataFrame.from_records(records, columns=headers)
    metric = [h for h in headers if h not in {c.header for c in columns if c.meta}]
    return table.astype(dict.fromkeys(metric, float))  # empty cells -> NaN, not None


def write_table(table: pd.DataFrame, out_csv: str | Path) -> Path:
    """Write the CSV and a Markdown file beside it (same name, .md), atomically; return the Markdown path."""
    out_csv = Path(out_csv)
    out_md = out_csv.with_suffix(".md")
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False, float_format="%.2f")
    with atomic_path(out_md) as tmp:
        tmp.write_text(markdown(table) + "\n")
    return out_md


def metric_text(value: float, lo: float = float("nan"), hi: float = float("nan")) -> str:
    """'66.67', or '66.67 ± 9.10' with the interval's half-width; '' for a missing value."""
    if pd.isna(value):
        return ""
    return f"{value:.2f}" if pd.isna(lo) or pd.isna(hi) else f"{value:.2f} ± {(hi - lo) / 2:.2f}"


def markdown(table: pd.DataFrame) -> str:
    """Metric columns right-aligned with two decimals (and ± the half-width of their interval, whose bound
    columns are folded into the cell); metadata shown as written (no number parsing)."""
    bounds = {c for c in table.columns if c.endswith((LO, HI)) and c[: -len(LO)] in table.columns}
    nan = pd.Series(float("nan"), index=table.index)
    shown = table[[c for c in table.columns if c not in bounds]].astype(object).copy()
    is_metric = [pd.api.types.is_float_dtype(table[c]) for c in shown.columns]
    for column, metric in zip(shown.columns, is_metric, strict=True):
        if metric:
            lo, hi = (table[column + end] if column + end in bounds else nan for end in (LO, HI))
            shown[column] = [metric_text(*v) for v in zip(table[column], lo, hi, strict=True)]
    return shown.to_markdown(index=False, disable_numparse=True,
                             colalign=["right" if m else "left" for m in is_metric])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("metrics", nargs="+", type=Path, help="metric files written by `star evaluate --json`")
    parser.add_argument("--out", type=Path, required=True, help="CSV to write; the Markdown goes beside it (.md)")
    parser.add_argument("--columns", default="table1",
                        help=f"a preset ({', '.join(PRESETS)}) or comma-separated columns, e.g. 'Method,B4@30,F1'")


def run(args: argparse.Namespace) -> int:
    table = make_table(args.metrics, args.columns)
    out_md = write_table(table, args.out)
    print(markdown(table))
    print(f"wrote {args.out} and {out_md}")
    return 0
