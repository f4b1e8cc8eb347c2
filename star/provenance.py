"""What produced a cache: code hashes, file checksums, atomic writes.

`code_hash("star.video.decode")` hashes the source of that module and of every `star` module it imports,
transitively. Rules put it in a param, so Snakemake reruns a stage when (and only when) code it runs changes.
"""

from __future__ import annotations

import ast
import contextlib
import glob
import hashlib
import os
import re
import shutil
import socket
import tempfile
from functools import cache
from pathlib import Path
from collections.abc import Iterator

from star import __version__, registry

PACKAGE_ROOT = Path(__file__).resolve().parent


def _module_file(name: str) -> Path | None:
    rel = Path(*name.split("."))
    for candidate in (PACKAGE_ROOT.parent / rel.with_suffix(".py"), PACKAGE_ROOT.parent / rel / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _star_imports(name: str, path: Path) -> set[str]:
    """Names of `star` modules imported by the module `name` at `path` (absolute and relative imports)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parts = package[: len(package) - node.level + 1] if node.level else []
            base = ".".join(parts + (node.module.split(".") if node.module else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {m for m in found if m == "star" or m.startswith("star.")}


# star.registry is a table every stage reads; hashing it whole would rerun every stage when one method is
# registered. Its entries reach the rules as data instead: a method's entry in its stages' code hashes
# (`method_code`), an encoder's defaults in the config, a video encoder's module in its extraction's hash.
NOT_HASHED = frozenset({"star.registry"})


@cache
def module_closure(name: str) -> tuple[str, ...]:
    """`name` and every `star` module it imports, transitively, sorted (star.registry aside: NOT_HASHED)."""
    seen: dict[str, Path] = {}
    todo = [name]
    while todo:
        mod = todo.pop()
        if mod in seen or (mod in NOT_HASHED and mod != name):
            continue
        path = _module_file(mod)
        if path is None:
            continue  # an attribute imported from a module, not a module
        seen[mod] = path
        todo.extend(_star_imports(mod, path) - seen.keys())
    if name not in seen:
        raise ModuleNotFoundError(f"no module {name!r} in {PACKAGE_ROOT}")
    return tuple(sorted(seen))


def code_hash(*modules: str) -> str:
    """sha256 (16 hex digits) over the source of `modules` and the `star` modules they import."""
    digest = hashlib.sha256()
    for mod in sorted({m for name in modules for m in module_closure(name)}):
        digest.update(mod.encode() + b"\0" + _module_file(mod).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def method_code(method: str, *modules: str) -> str:
    """Hash of `modules` (code_hash) and of the method's registry entry: what a stage that runs the method's
    models depends on (its entry sets its tokenizer, spot selection, positions)."""
    entry = repr(registry.method(method)).encode()
    return hashlib.sha256(code_hash(*modules).encode() + b"\0" + entry).hexdigest()[:16]


def stage_code(stage: str, method: str) -> str:
    """Hash of the code a train stage runs: its module, the module of the method's model for that stage and, for
    captioning, the tokenizers (models and tokenizers are imported by name, so they are named here; a spotter's
    hash leaves out what only captioning runs: the tokenizers and the GPT-2 decoder), and the method's entry."""
    tokenizers = registry.tokenizer_modules() if stage == "captioning" else []
    dense = ["star.train.dense"] if stage == "captioning" and registry.method(method).kind == "dense" else []
    model = registry.method(method).target(stage).split(":")[0]
    return method_code(method, f"star.train.{stage}", model, *tokenizers, *dense)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def record(stage: str, config: dict | None = None, code: str | None = None, sources=(), **extra) -> dict:
    """The provenance dict a cache stores: stage, its config and hash, code hash, source checksums. No clock time:
    provenance is hashed into every downstream cache's `sources`, and two clean builds must give the same bytes
    (the file's mtime tells when)."""
    from star.config import to_json

    cfg_json = to_json(config or {})
    return {
        "stage": stage,
        "star_version": __version__,
        "config": cfg_json,
        "config_hash": sha256_text(cfg_json)[:16],
        "code_hash": code or "",
        "sources": {str(p): sha256_file(p) for p in sources},
        **extra,
    }


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _gone(match: re.Match | None) -> bool:
    """A `<host>-<pid>` tag of this host whose process has exited."""
    return bool(match) and int(match.group(1)) != os.getpid() and not _alive(int(match.group(1)))


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Delete the temporaries of `path` left by a writer on this host that is gone (killed hard: no `finally`
    ran). A temporary of a live process, or of another host (a shared file system), is left alone."""
    removed = []
    pattern = re.compile(rf"\.{re.escape(path.name)}\.{re.escape(HOST)}-(\d+)\..*\.tmp")
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp*"):
        if _gone(pattern.match(tmp.name)):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def work_dir(parent: Path, prefix: str) -> tempfile.TemporaryDirectory:
    """A temporary folder in `parent` tagged with host and process, after removing the folders of `prefix` that a
    hard-killed process of this host left there."""
    pattern = re.compile(rf"{re.escape(prefix)}{re.escape(HOST)}-(\d+)-")
    for old in parent.glob(f"{glob.escape(prefix)}*"):
        if old.is_dir() and _gone(pattern.match(old.name)):
            shutil.rmtree(old, ignore_errors=True)
    return tempfile.TemporaryDirectory(dir=parent, prefix=f"{prefix}{HOST}-{os.getpid()}-")


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it onto `path`, on failure delete it.

    Readers never see a half-written file, and a failed run leaves any previous `path` untouched. The temporary
    is named after the host and process, so the next writer of `path` removes one a hard kill left behind.
    `suffix` ends the temporary name (e.g. ".mkv", for writers that pick the format from the name).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{HOST}-{os.getpid()}.", suffix=f".tmp{suffix}",
                               dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes files private; give the usual permissions
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
