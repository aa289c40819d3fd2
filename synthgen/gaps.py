"""The gaps file (``gaps.json``): under-covered attribute bins that ``analyze`` writes and the
targeted planner reads.

It lives in the base layer so that the two stages share a file format, not each other's code.
Format (version 1)::

    {"version": 1, "attributes": [...], "bins": [{"key": {attr: value}, "needed": int, ...}], ...}

``key`` values of categorical attributes are checked against ``synthgen.vocab.CATEGORIES``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from synthgen.errors import DataError
from synthgen.io import write_json_atomic
from synthgen.vocab import CATEGORIES

GAPS_VERSION = 1


def write_gaps(path: str | Path, doc: Mapping[str, Any]) -> Path:
    return write_json_atomic(path, dict(doc))


def read_gaps(path: str | Path) -> dict[str, Any]:
    """Load and check gaps.json; errors name the file and how to regenerate it."""
    path = Path(path)
    fix = "run `synthgen analyze` to write gaps.json, and point plan.gaps at it"
    if not path.exists():
        raise DataError("gaps file not found", where=str(path), fix=fix)
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise DataError(f"not valid JSON ({err})", where=str(path), fix=fix) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("bins"), list):
        raise DataError("missing the 'bins' list", where=str(path), fix=fix)
    if doc.get("version") != GAPS_VERSION:
        raise DataError(f"gaps format version {doc.get('version')!r}, expected {GAPS_VERSION}", where=str(path), fix=fix)
    for i, b in enumerate(doc["bins"]):
        if not isinstance(b, dict) or not isinstance(b.get("key"), dict) or not isinstance(b.get("needed"), int):
            raise DataError(f"bin {i} lacks a 'key' mapping or an integer 'needed'", where=str(path), fix=fix)
        for attr, val in b["key"].items():
            if attr in CATEGORIES and val not in CATEGORIES[attr]:
                raise DataError(f"bin {i}: unknown {attr} {val!r}", where=str(path), fix=fix)
    return doc
