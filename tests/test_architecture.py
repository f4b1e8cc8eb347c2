"""The package's layers, checked on its import graph (every import, module-level or inside a function):
inference never reaches into training, packages do not import each other in a circle, modules stay small, and
the workflow builds its job graph without torch."""

import ast
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from star.provenance import _module_file, _star_imports

REPO = Path(__file__).resolve().parents[1]
MAX_LINES = 500
# What serves a trained model: it depends on models and data, never on training.
INFERENCE = ("star.infer", "star.caption_video", "star.model_file", "star.checkpoint", "star.models",
             "star.data", "star.eval", "star.features", "star.positions", "star.viewer")


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted((REPO / "star").rglob("*.py")):
        name = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        found[name] = path
    return found


def imports() -> dict[str, set[str]]:
    """module -> the star modules it imports (names that are attributes count as their module)."""
    mods = modules()
    out = {}
    for name, path in mods.items():
        targets = set()
        for imported in _star_imports(name, path):
            while imported not in mods and "." in imported:
                imported = imported.rsplit(".", 1)[0]
            if imported in mods and imported != name:
                targets.add(imported)
        out[name] = targets
    return out


def package(module: str) -> str:
    """The layer a module belongs to: its subpackage (star.train), or itself for a top-level module."""
    return ".".join(module.split(".")[:2])


def test_inference_imports_nothing_from_training():
    bad = sorted((m, t) for m, targets in imports().items() if m.startswith(INFERENCE)
                 for t in targets if t.startswith("star.train"))
    assert not bad, f"inference-side modules import training: {bad}"


def test_localizer_and_models_do_not_import_the_simulator():
    """Pitch and camera geometry live in star.geometry: reading real video needs no synthetic world."""
    bad = sorted((m, t) for m, targets in imports().items() if m.startswith(("star.positions", "star.models"))
                 for t in targets if t.startswith("star.world"))
    assert not bad, f"localizer or model modules import the simulator: {bad}"


def test_no_import_cycles_between_packages():
    edges = defaultdict(set)
    for m, targets in imports().items():
        for t in targets:
            if package(m) != package(t) and package(t) != "star":
                edges[package(m)].add(package(t))

    def reaches(start, goal):
        todo, seen = [start], set()
        while todo:
            node = todo.pop()
            if node == goal:
                return True
            if node not in seen:
                seen.add(node)
                todo.extend(edges[node])
        return False

    cycles = sorted({tuple(sorted((a, b))) for a in list(edges) for b in edges[a] if reaches(b, a)})
    assert not cycles, f"packages importing each other (directly or through others): {cycles}"


def test_modules_stay_small():
    long = {m: n for m, p in modules().items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_the_workflow_imports_nothing_heavy_to_build_its_job_graph():
    """Every `star` module the .smk files import, imported in a fresh interpreter, pulls in no torch, paddle or
    transformers (a dry run of a large workflow would otherwise pay seconds per process for nothing)."""
    names = set()
    for smk in [REPO / "Snakefile", *sorted((REPO / "workflow/rules").glob("*.smk"))]:
        for line in smk.read_text().splitlines():
            if match := re.match(r"\s*from (star[\w.]*) import ([\w, ]+)", line):
                names.add(match.group(1))
                attrs = [f"{match.group(1)}.{n.split()[0]}" for n in match.group(2).split(",") if n.strip()]
                names.update(a for a in attrs if _module_file(a))
            elif match := re.match(r"\s*import (star[\w.]*)", line):
                names.add(match.group(1))
    assert "star.config" in names and "star.registry" in names
    code = (f"import importlib, sys\nfor m in {sorted(names)!r}: importlib.import_module(m)\n"
            "print(sorted(m for m in ('torch', 'paddle', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]", f"the workflow's imports load {out.stdout.strip()}"


def test_the_import_walk_sees_imports_inside_functions():
    """The checks above are only as good as the walk: an import inside a function is an edge too (star caption
    imports its localizer only when a model reads positions)."""
    inside = [n for n in ast.walk(ast.parse(modules()["star.caption_video"].read_text()))
              if isinstance(n, ast.FunctionDef) and "star.positions.localize" in ast.unparse(n)]
    assert inside and "star.positions.localize" in imports()["star.caption_video"]


def test_common_smk_is_the_only_shared_workflow_module():
    """Every other .smk file holds rules only: a name one of them defines at top level (a helper, a constant) is
    used in that file alone, so rule files do not depend on each other's globals."""
    files = sorted((REPO / "workflow/rules").glob("*.smk"))
    texts = {f.name: f.read_text() for f in files}
    for name, text in texts.items():
        if name == "common.smk":
            continue
        defined = re.findall(r"^(?:def ([A-Za-z_]\w*)|([A-Za-z_]\w*) *=)", text, re.M)
        for symbol in {a or b for a, b in defined}:
            users = [other for other, t in texts.items() if other != name and re.search(rf"\b{symbol}\b", t)]
            assert not users, f"{name} defines {symbol}, used by {users}: move it to common.smk"
