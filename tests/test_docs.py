"""The README and docs/: links resolve, nothing outside the repository is named, documented commands parse."""

import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _fenced_commands(text: str, program: str) -> list[str]:
    """Command lines starting with `program` inside ``` fences, continuation lines joined."""
    commands, fence, pending = [], False, ""
    for line in text.splitlines():
        if line.strip().startswith("```"):
            fence = not fence
            continue
        if not fence:
            continue
        line = pending + line.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        line = line.split(" #", 1)[0].strip()
        if line.startswith(program + " "):
            commands.append(line)
    return commands


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_pages_name_nothing_outside_the_repository(page):
    text = page.read_text()
    for bad in ("../shared", "FACTS", "development machine", "this stop"):
        assert bad not in text, f"{page.name} mentions {bad!r}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page):
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", page.read_text()):
        if "://" in target:
            continue
        assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


def test_readme_is_a_front_door():
    assert len((ROOT / "README.md").read_text().splitlines()) < 150


def test_documented_snakemake_commands_parse():
    """Every snakemake command in the docs parses with snakemake's own argument parser and keeps its targets:
    `--sdm conda data` once swallowed the target as a deployment method."""
    from snakemake.cli import get_argument_parser

    commands = [c for page in PAGES for c in _fenced_commands(page.read_text(), "snakemake")]
    assert any("--sdm conda" in c for c in commands)
    for command in commands:
        argv = shlex.split(command)[1:]
        try:
            args = get_argument_parser().parse_args(argv)
        except SystemExit as exc:  # argparse's way of refusing
            raise AssertionError(f"snakemake refuses the documented command: {command}") from exc
        if "--sdm" in argv:
            assert args.targets, f"no target left in: {command}"
            assert all(t in {"data", "all"} or t.startswith("results/") for t in args.targets), command
