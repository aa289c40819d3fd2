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
from pydantic import BaseModel, Field, ValidationError, field_validator

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

    def code_versions(self) -> dict[str, Any]:
        return {"generator": self.generate.code_version(), "labelers": self.label.code_versions()}


def format_validation_error(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"] if not str(p).startswith("function-after"))
        msg = e["msg"].removeprefix("Value error, ")
        val = e.get("input")
        shown = "" if isinstance(val, dict) else f" = {val!r}"
        lines.append(f"  {key}{shown}: {msg}")
    return f"{source}: invalid parameters\n" + "\n".join(lines)


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a key given twice in one mapping: plain YAML keeps the last one
    silently, so a second ``plan:`` section would hide the first without a word."""


def _no_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise ConfigError(
                f"key {key!r} appears twice (lines {seen[key]} and {key_node.start_mark.line + 1})",
                fix="keep one of them",
            )
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def read_yaml(path: Path) -> Any:
    """Parse a YAML file with one-line errors: not a file, not UTF-8, not YAML, duplicate keys."""
    if path.is_dir():
        raise ConfigError("is a directory, not a params file", where=str(path), fix="pass a params.yaml file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"not UTF-8 text (byte {err.start})", where=str(path),
                          fix="save the file as UTF-8") from None
    except OSError as err:
        raise ConfigError(f"cannot be read ({err.strerror or err})", where=str(path)) from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except ConfigError as err:
        raise ConfigError(err.what, where=str(path), fix=err.fix) from None
    except yaml.YAMLError as err:
        raise ConfigError(f"not valid YAML: {_one_line(err)}", where=str(path)) from None


def _one_line(err: yaml.YAMLError) -> str:
    """PyYAML's message without its multi-line source excerpt: the problem and where it is."""
    if isinstance(err, yaml.MarkedYAMLError) and err.problem:
        mark = err.problem_mark
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        return f"{err.problem}{at}"
    return " ".join(str(err).split())


def _check_key(dotted: str) -> None:
    """An override must name a parameter that exists: an unknown key is a typo on the command
    line, not an error in params.yaml. Free-form mappings (e.g. ``plan.attributes``) end the check."""
    model: Any = Params
    walked: list[str] = []
    for part in dotted.split("."):
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return
        fields = model.model_fields
        if part not in fields:
            where = ".".join(walked) or "the top level"
            raise ConfigError(
                f"unknown parameter {dotted!r}",
                where="--set",
                fix=f"{where} has: {', '.join(fields)}",
            )
        walked.append(part)
        model = fields[part].annotation


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    node = tree
    parts = dotted.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"cannot set {dotted!r}: {p!r} is not a section", where="--set")
    node[parts[-1]] = value


def parse_override(item: str) -> tuple[str, Any]:
    """``key.sub=value`` -> (key, YAML-parsed value), with one-line errors naming the override."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} is not KEY=VALUE", where="--set", fix="write e.g. --set plan.n=50")
    key, value = item.split("=", 1)
    key = key.strip()
    if not key or any(not p for p in key.split(".")):
        raise ConfigError(f"override {item!r} has an empty key", where="--set", fix="write e.g. --set plan.n=50")
    _check_key(key)
    try:
        parsed = yaml.load(value, Loader=_UniqueKeyLoader)
    except ConfigError as err:
        raise ConfigError(f"{key}: {err.what}", where="--set", fix=err.fix) from None
    except yaml.YAMLError as err:
        raise ConfigError(f"value of {key} is not valid YAML: {_one_line(err)}", where="--set",
                          fix="quote it, e.g. --set 'plan.n=50' or --set \"key=[a, b]\"") from None
    return key, parsed


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for item in overrides:
        key, value = parse_override(item)
        _set_dotted(raw, key, value)
    return raw


def parse_params(raw: dict[str, Any] | None, source: str = "params") -> Params:
    try:
        return Params.model_validate(raw or {})
    except ValidationError as err:
        raise ConfigError(
            format_validation_error(err, source),
            fix="correct the values above (see the comments in params.yaml for allowed ranges)",
        ) from None


def read_params_tree(path: str | Path | None = "params.yaml") -> tuple[dict[str, Any], str]:
    """The raw mapping in a params file (missing ``params.yaml`` = defaults) and its name."""
    if path is None:
        return {}, "defaults"
    path = Path(path)
    if not path.exists():
        if str(path) != "params.yaml":
            raise ConfigError("file not found", where=str(path), fix="pass an existing --params file")
        return {}, str(path)
    raw = read_yaml(path) or {}
    if not isinstance(raw, dict):
        raise ConfigError("top level must be a mapping of sections", where=str(path))
    return raw, str(path)


def load_params(path: str | Path | None = "params.yaml", overrides: list[str] | None = None) -> Params:
    """Load params.yaml (missing file = defaults), apply ``key.sub=value`` overrides, validate."""
    raw, source = read_params_tree(path)
    if overrides:
        apply_overrides(raw, overrides)
        source = f"{source} with --set {' '.join(overrides)}"
    return parse_params(raw, source)
