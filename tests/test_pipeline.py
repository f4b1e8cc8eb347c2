"""The model stages end to end on the tiny world: `snakemake results/table1.csv` trains, spots, captions, evaluates
and tabulates SDVC, Delta, STaR, PDVC and Vid2Seq, a second run has nothing to do, and `snakemake --report` shows
it all."""

import json
import re
import shutil

import pandas as pd
import pytest
import yaml

from star.data.predictions import load_predictions
from tests.conftest import REPO, snakemake
from tests.test_workflow import planned_jobs

# a few steps of everything: this checks the chain, not the models' quality
FAST_TRAIN = {"steps": 3, "batch_size": 8, "eval_every": 3, "checkpoint_every": 3, "warmup_steps": 1,
              "max_valid_samples": 16}
FAST = {"spotting": {"train": FAST_TRAIN}, "captioning": {"train": FAST_TRAIN, "beam_size": 2, "max_tokens": 12,
                                                          "dense": {"train": {"steps": 3, "batch_size": 4,
                                                                              "eval_every": 3,
                                                                              "max_valid_samples": 16}}}}


def fast_copy(tiny_world, tmp_path):
    """A copy of the tiny world's workflow folder, and the config files that train its models for 3 steps."""
    work = tmp_path / "work"
    shutil.copytree(tiny_world, work, symlinks=True)
    (work / "fast.yaml").write_text(yaml.safe_dump(FAST))
    return work, ["--configfile", str(REPO / "config.yaml"), str(work / "tiny.yaml"), str(work / "fast.yaml")]


def test_table1_from_the_tiny_world(tiny_world, tmp_path):
    work, configs = fast_copy(tiny_world, tmp_path)

    snakemake(work, "--cores", "2", *configs, "--", "results/table1.csv")

    table = pd.read_csv(work / "results/table1.csv")
    assert table["Method"].tolist() == ["SDVC", "Delta", "STaR", "PDVC", "Vid2Seq"]
    assert set(table["Encoder"]) == {"PP-TimesFormer"} and set(table["F"]) == {1}
    metrics = ["B4@30", "M@30", "R-L@30", "C@30", "Recall", "Precision", "F1"]
    assert list(table.columns[3:]) == [c + end for c in metrics for end in ("", "_lo", "_hi")]  # with intervals
    assert (table["M@30_lo"] <= table["M@30"]).all() and (table["M@30"] <= table["M@30_hi"]).all()
    assert table[["M@30", "Recall", "Precision"]].notna().all().all()
    assert (work / "results/table1.md").read_text().startswith("| Method")
    for method in ("sdvc", "delta", "star", "pdvc", "vid2seq"):
        predictions = list((work / f"results/captioning/{method}/pptimesformer/default/spots").rglob("*.json"))
        assert len(predictions) == 1   # the one test game
        halves, _ = load_predictions(predictions[0])
        assert halves[1] and halves[2]   # at least one caption per half
        spotter = work / f"results/spotting/{method}/pptimesformer/default/model.safetensors"
        assert spotter.is_file() == (method not in ("pdvc", "vid2seq"))   # end to end: no spotter
        assert not list((work / "results").rglob("*.ckpt"))

    assert planned_jobs(snakemake(work, "-n", *configs, "--", "results/table1.csv")) == {}

    # the report of that run: Table 1, every model's training curves, each spotter's confidence over the test
    # game, the viewer pages, the probe and the pitch view
    snakemake(work, *configs, "--report", str(work / "report.html"))
    shown = set(re.findall(r"results/[\w./-]+?\.(?:png|html|csv)", (work / "report.html").read_text()))
    game = next(line.split("\t")[0] for line in (work / "results/dataset/games.tsv").read_text().splitlines()
                if "\ttest\t" in line)
    assert "results/table1.csv" in shown
    for method in ("sdvc", "delta", "star"):
        run = f"{method}/pptimesformer/default"
        assert {f"results/plots/training/spotting/{run}.png", f"results/plots/training/captioning/{run}.png",
                f"results/plots/spotting/{run}/{game}.png", f"results/viewer/{run}/{game}.html"} <= shown
    for run in ("pdvc/pptimesformer/default", "vid2seq/pptimesformer/default"):
        assert {f"results/plots/training/captioning/{run}.png", f"results/viewer/{run}/{game}.html"} <= shown
    assert {"results/plots/probe/pptimesformer.png", f"results/plots/positions/{game}/1.png"} <= shown


@pytest.mark.slow
def test_table4_is_the_captioning_subtask_on_the_tiny_world(tiny_world, tmp_path):
    """Table 4 from the ground-truth anchors: the captioning subtask's columns, then the dense @5 extras."""
    work, configs = fast_copy(tiny_world, tmp_path)
    snakemake(work, "--cores", "2", *configs, "--", "results/table4.csv")

    table = pd.read_csv(work / "results/table4.csv")
    assert table["Method"].tolist() == ["SDVC", "Delta", "STaR"]
    metrics = ["B4", "M", "R-L", "C", "B4 dense@5", "M dense@5", "R-L dense@5", "C dense@5"]
    assert list(table.columns[1:]) == [c + end for c in metrics for end in ("", "_lo", "_hi")]  # with intervals
    assert table.notna().all().all()
    for method in ("sdvc", "delta", "star"):
        result = json.loads((work / f"results/metrics/{method}/pptimesformer/default/gt@captioning.json").read_text())
        assert result["protocol"] == "captioning" and result["counts"]["captions"] > 0


@pytest.mark.slow
def test_diagnostics_from_the_tiny_world(tiny_world, tmp_path):
    """`snakemake results/diagnostics.csv`: every method and STaR variant, at the annotations and at the spots."""
    work, configs = fast_copy(tiny_world, tmp_path)

    snakemake(work, "--cores", "2", *configs, "--", "results/diagnostics.csv")

    table = pd.read_csv(work / "results/diagnostics.csv")
    assert table["Run"].tolist() == ["SDVC", "Delta", "STaR", "STaR (no G.)", "STaR (no P.)", "STaR (no G., no P.)",
                                     "annotations"]
    assert (table["long_range_n"][:-1] > 0).all()  # the world marks what its captions recall
    assert table["distinct_1grams"].notna().all() and (table["spot_label_n"][:-1] > 0).all()
    assert "annotation label (rows)" in (work / "results/diagnostics.md").read_text()
    assert pd.read_csv(work / "results/diagnostics_confusion.csv")["count"].sum() > 0
    assert planned_jobs(snakemake(work, "-n", *configs, "--", "results/diagnostics.csv")) == {}
