"""Small builders shared by tests: tiny params and a published dataset made by the real stages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from synthgen.config import Params, parse_params


def tiny_params(data_dir: Path, n: int = 6, shard_size: int = 3, size: int = 96, **sections: Any) -> Params:
    raw: dict[str, Any] = {
        "data_dir": str(data_dir),
        "plan": {"n": n, "shard_size": shard_size, "identities": max(3, n // 2)},
        "generate": {"width": size, "height": size, "workers": 1},
        # Top-up rounds add rows after curation; tests that count rows opt in (tests/test_topup.py).
        "curate": {"topup": {"enabled": False}},
    }
    for key, value in sections.items():
        raw.setdefault(key, {}).update(value)
    return parse_params(raw)


def make_generated(params: Params) -> None:
    from synthgen.stages import run_generate, run_plan

    run_plan(params)
    run_generate(params, progress=False)
