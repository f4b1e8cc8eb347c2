"""Evaluation: dense-captioning metrics with the official SoccerNet semantics (`dvc`, `star evaluate`; the
public entry point is `star.evaluate.evaluate`), their text scorers (`scorers`), and the paper's metric tables
(`tables`, `star tables`)."""
