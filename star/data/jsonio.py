"""Reading the JSON files of a SoccerNet tree with errors that name the file."""

from __future__ import annotations

import json
from pathlib import Path

from star.errors import InputError


def read_json_object(path: str | Path, error: type[InputError] = InputError, what: str = "JSON file") -> dict:
    """The top-level object of a JSON file; `error(...)` naming the file if it is missing, invalid or not an object."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: {what} does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise error(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data
