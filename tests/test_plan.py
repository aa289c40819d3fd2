"""Planner: determinism, validation messages, identity-level splits, eye-in-head limits."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from synthgen.config import load_params, parse_params
from synthgen.errors import ConfigError
from synthgen.plan.planner import plan_specs
from synthgen.plan.sampling import assign_splits
from synthgen.spec import read_plan, write_plan


def test_same_seed_same_specs_and_ids() -> None:
    p = parse_params({"plan": {"n": 50}})
    a, b = plan_specs(p.plan, p.seed), plan_specs(p.plan, p.seed)
    assert a == b
    assert len({s.sample_id for s in a}) == 50


def test_other_seed_other_specs() -> None:
    p = parse_params({"plan": {"n": 20}})
    a, b = plan_specs(p.plan, 1), plan_specs(p.plan, 2)
    assert [s.sample_id for s in a] != [s.sample_id for s in b]


def test_growing_n_keeps_earlier_specs() -> None:
    small = parse_params({"plan": {"n": 10}})
    big = parse_params({"plan": {"n": 30}})
    assert plan_specs(small.plan, 7) == plan_specs(big.plan, 7)[:10]


def test_splits_are_by_identity() -> None:
    p = parse_params({"plan": {"n": 400, "identities": 40}})
    specs = plan_specs(p.plan, p.seed)
    split_of: dict[int, set[str]] = {}
    for s in specs:
        split_of.setdefault(s.identity, set()).add(s.split)
        # identity-level attributes never change within an identity
    assert all(len(v) == 1 for v in split_of.values())
    counts = Counter(s.split for s in specs)
    assert counts["train"] == 320 and counts["val"] == 40 and counts["test"] == 40
    by_id = {}
    for s in specs:
        assert by_id.setdefault(s.identity, (s.age, s.gender, s.skin_tone)) == (s.age, s.gender, s.skin_tone)


def test_every_split_gets_an_identity_when_possible() -> None:
    labels = assign_splits(3, {"train": 0.98, "val": 0.01, "test": 0.01}, seed=0)
    assert sorted(labels) == ["test", "train", "val"]


def test_eye_in_head_limit_moves_the_head_not_the_gaze() -> None:
    p = parse_params({"plan": {"n": 200, "max_eye_in_head_yaw": 10, "attributes": {
        "gaze_yaw": {"dist": "uniform", "low": -50, "high": 50},
        "head_yaw": {"dist": "constant", "value": 0}}}})
    specs = plan_specs(p.plan, 3)
    assert all(abs(s.gaze_yaw - s.head_yaw) <= 10 + 1e-6 for s in specs)
    assert max(abs(s.gaze_yaw) for s in specs) > 40  # gaze kept its own distribution


def test_categorical_weights_are_followed() -> None:
    p = parse_params({"plan": {"n": 2000, "attributes": {
        "expression": {"dist": "categorical", "values": ["neutral", "anger"], "weights": [9, 1]}}}})
    c = Counter(s.expression for s in plan_specs(p.plan, 0))
    assert set(c) == {"neutral", "anger"}
    assert 0.85 < c["neutral"] / 2000 < 0.95


def test_plan_file_round_trip_and_shards(tmp_path: Path) -> None:
    p = parse_params({"plan": {"n": 25, "shard_size": 10}})
    specs = plan_specs(p.plan, p.seed)
    path = write_plan(specs, tmp_path / "plan.parquet", shard_size=10)
    assert read_plan(path) == specs
    assert [s.index for s in read_plan(path, shard=2)] == list(range(20, 25))


@pytest.mark.parametrize(
    ("raw", "needles"),
    [
        ({"plan": {"attributes": {"age": {"dist": "uniform", "low": -5, "high": 30}}}},
         ["plan.attributes.age", "[-5.0]", "[0, 90]"]),
        ({"plan": {"attributes": {"expression": {"dist": "categorical", "values": ["smug"]}}}},
         ["plan.attributes.expression", "smug", "happiness"]),
        ({"plan": {"attributes": {"gaze_yaw": {"dist": "gauss", "mean": 0}}}},
         ["plan.attributes.gaze_yaw", "gauss"]),
        ({"plan": {"n": 0}}, ["plan.n = 0", "greater than or equal to 1"]),
        ({"plan": {"nn": 5}}, ["plan.nn", "Extra inputs"]),
        ({"generate": {"width": 10}}, ["generate.width = 10"]),
        ({"plan": {"mode": "targeted"}}, ["plan", "gaps"]),
        ({"plan": {"attributes": {"head_roll": {"dist": "truncnormal", "mean": 0, "std": 5,
                                                 "low": 10, "high": 5}}}},
         ["plan.attributes.head_roll", "high"]),
    ],
)
def test_bad_params_name_key_value_and_range(raw: dict, needles: list[str]) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_params(raw)
    msg = str(exc.value)
    for needle in needles:
        assert needle in msg, msg
    assert "Traceback" not in msg


def test_load_params_file_and_overrides(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text("plan:\n  n: 12\n")
    p = load_params(f, ["plan.shard_size=4", "generate.width=128"])
    assert (p.plan.n, p.plan.shard_size, p.generate.width) == (12, 4, 128)
    with pytest.raises(ConfigError, match="file not found"):
        load_params(tmp_path / "missing.yaml")
    f.write_text("plan: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(f)


def test_repo_params_yaml_is_valid() -> None:
    p = load_params(Path(__file__).parents[1] / "params.yaml")
    assert p.plan.n >= 100 and p.generate.backend == "procedural"
