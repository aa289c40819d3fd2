"""params.yaml, parsed and validated with pydantic.

Every stage reads its own section; DVC tracks the same sections (``params:`` in dvc.yaml), so a
change to ``generate.*`` re-runs generation and what follows, nothing upstream. Stage-specific
sections are defined next to their stage (``synthgen/<stage>/config.py``) and assembled here.

This module sits above the stages, beside the front ends: it imports every stage's section, and no
stage imports it. Stages type their params with protocols (``synthgen.sections.RunParams`` and
one per stage), which ``Params`` satisfies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, field_validator

from synthgen.analyze.config import AnalyzeParams
from synthgen.curate.config import CurateParams
from synthgen.errors import ConfigError
from synthgen.generate.config import GenerateParams
from synthgen.label.config import LabelParams
from synthgen.plan.config import PlanParams
from synthgen.sections import DatasetParams, PublishParams, RecordParams, Section
from synthgen.train.config import TrainParams


class Params(Section):
    seed: int = Field(1234, ge=0, lt=2**32)
    data_dir: Path = Path("data")
    dataset: DatasetParams = DatasetParams()
    plan: PlanParams = PlanParams()
    generate: GenerateParams = GenerateParams()
    label: LabelParams = LabelParams()
    curate: CurateParams = CurateParams()
    publish: PublishParams = PublishParams()
    analyze: AnalyzeParams = AnalyzeParams()
    train: TrainParams = TrainParams()
    record: RecordParams = RecordParams()

    @field_validator("data_dir")
    @classmethod
    def _no_empty(cls, v: Path) -> Path:
        if str(v).strip() == "":
            raise ValueError("must not be empty")
        return v

    def shaping_sections(self) -> dict[str, Any]:
        """The params that decide a dataset's content (and so its automatic version)."""
        return self.model_dump(
            mode="json", include={"seed", "dataset", "plan", "generate", "label", "curate"}
        )


def format_validation_error(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"] if not str(p).startswith("function-after"))
        msg = e["msg"].removeprefix("Value error, ")
        val = e.get("input")
        shown = "" if isinstance(val, dict) else f" = {val!r}"
        lines.append(f"  {key}{shown}: {msg}")
    return f"{source}: invalid parameters\n" + "\n".join(lines)


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    node = tree
    parts = dotted.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"cannot set {dotted!r}: {p!r} is not a section", where="--set")
    node[parts[-1]] = value


def parse_params(raw: dict[str, Any] | None, source: str = "params") -> Params:
    try:
        return Params.model_validate(raw or {})
    except ValidationError as err:
        raise ConfigError(
            format_validation_error(err, source),
            fix="correct the values above (see the comments in params.yaml for allowed ranges)",
        ) from None


def load_params(path: str | Path | None = "params.yaml", overrides: list[str] | None = None) -> Params:
    """Load params.yaml (missing file = defaults), apply ``key.sub=value`` overrides, validate."""
    raw: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        path = Path(path)
        source = str(path)
        if path.exists():
            try:
                raw = yaml.safe_load(path.read_text()) or {}
            except yaml.YAMLError as err:
                raise ConfigError(f"not valid YAML: {err}", where=str(path)) from None
            if not isinstance(raw, dict):
                raise ConfigError("top level must be a mapping of sections", where=str(path))
        elif str(path) != "params.yaml":
            raise ConfigError("file not found", where=str(path), fix="pass an existing --params file")
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not KEY=VALUE", where="--set")
        key, value = item.split("=", 1)
        _set_dotted(raw, key.strip(), yaml.safe_load(value))
    return parse_params(raw, source)
