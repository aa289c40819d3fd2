"""The diffusion backend end to end on tiny random-weight SD and SDXL pipelines.

The pipelines are built from configs (as diffusers tests itself), saved with save_pretrained and
loaded back through the backend's own resolution and from_pretrained path; the procedural
backend supplies control maps, init images and labels. Nothing is mocked: only the weights are
random and tiny (64x64 images, 2-4 steps), so pixels are noise but every code path is real.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from synthgen.config import parse_params  # noqa: E402
from synthgen.errors import ConfigError, ModelUnavailableError  # noqa: E402
from synthgen.generate.base import GENERATORS  # noqa: E402
from synthgen.generate.config import GenerateParams  # noqa: E402
from synthgen.generate.diffusion.backend import DiffusionGenerator  # noqa: E402
from synthgen.generate.diffusion.pipeline import PIPELINES  # noqa: E402
from synthgen.generate.diffusion.prompts import build_prompt  # noqa: E402
from synthgen.generate.diffusion.tiny import save_tiny  # noqa: E402
from synthgen.generate.parallel import my_shards, shards_for_process  # noqa: E402
from synthgen.spec import SceneSpec  # noqa: E402

MODES = ("txt2img", "controlnet", "img2img", "controlnet_img2img")


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    # These machines are shared; one intra-op thread avoids oversubscription stalls on tiny tensors.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    root = tmp_path_factory.mktemp("tiny-diffusion")
    return {family: save_tiny(root, family) for family in ("sd", "sdxl")}


def _cfg(tiny: dict[str, tuple[Path, Path]], family: str = "sd", **diffusion: Any) -> GenerateParams:
    model, controlnet = tiny[family]
    base = dict(model=str(model), controlnet=str(controlnet), controlnet_subfolder=None, steps=2,
                strength=0.5, batch_size=2, scheduler="ddim")
    return GenerateParams(backend="diffusion", width=64, height=64, diffusion=base | diffusion)


def _spec(i: int, **kw: Any) -> SceneSpec:
    base = dict(sample_id=f"s{i}", index=i, seed=1000 + i, identity=i, identity_seed=7 + i, age=20 + 9 * i,
                gender=("female", "male")[i % 2], skin_tone=1 + i % 10, gaze_yaw=-20 + 10 * i)
    return SceneSpec(**(base | kw))


SPECS = [_spec(0), _spec(1, lighting="nir", glasses="glasses")]


@pytest.mark.parametrize("family", ["sd", "sdxl"])
@pytest.mark.parametrize("mode", MODES)
def test_every_mode_and_family_renders_rows(tiny: dict[str, tuple[Path, Path]], family: str, mode: str) -> None:
    gen = DiffusionGenerator(_cfg(tiny, family, mode=mode))
    assert type(gen.runner.pipe).__name__ == PIPELINES[(family, mode)]
    assert gen.name == "diffusion" and gen.version.startswith(f"1.0+{family}.")
    samples = gen.generate(SPECS)
    renders = GENERATORS.create("procedural", _cfg(tiny, family)).generate(SPECS)
    assert [s.sample_id for s in samples] == ["s0", "s1"]
    rgb, nir = samples
    assert rgb.image.shape == (64, 64, 3) and nir.image.shape == (64, 64)  # NIR rows are grey
    assert rgb.image.dtype == np.uint8 and rgb.image.std() > 0
    for spec, s, r in zip(SPECS, samples, renders):
        assert s.prompt == build_prompt(spec, gen.params).positive
        assert s.labels.keys() == r.labels.keys()
        np.testing.assert_array_equal(s.labels["req_landmarks_478"], r.labels["req_landmarks_478"])
        np.testing.assert_array_equal(s.control, r.control)
    assert "near-infrared" in nir.prompt and "near-infrared" not in rgb.prompt


def test_control_map_and_init_image_steer_the_output(tiny: dict[str, tuple[Path, Path]]) -> None:
    gen = DiffusionGenerator(_cfg(tiny, mode="controlnet_img2img", steps=4))
    r = gen.renderer.generate([SPECS[0]])[0]
    prompt = build_prompt(SPECS[0], gen.params)

    def run(control: np.ndarray, init: np.ndarray) -> np.ndarray:
        return gen.runner([prompt.positive], [prompt.negative], [SPECS[0].seed], 64, 64, [control], [init])[0]

    base = run(r.control, r.image)
    np.testing.assert_array_equal(base, gen.generate([SPECS[0]])[0].image)
    assert not np.array_equal(base, run(np.zeros_like(r.control), r.image))
    assert not np.array_equal(base, run(r.control, 255 - r.image))


def test_same_seed_same_bytes_whatever_the_batch(tiny: dict[str, tuple[Path, Path]]) -> None:
    """Per-sample generators: a sample's pixels depend on its own seed, not on its neighbours,
    even with an ancestral scheduler that draws fresh noise at every step."""
    a, b, c = _spec(0), _spec(1), _spec(2)
    gen = DiffusionGenerator(_cfg(tiny, mode="controlnet", scheduler="euler_a", batch_size=2))
    first = gen.generate([a, b])
    again = DiffusionGenerator(_cfg(tiny, mode="controlnet", scheduler="euler_a", batch_size=2))
    other = again.generate([a, c])
    assert first[0].image.tobytes() == other[0].image.tobytes()
    assert first[0].image.tobytes() != first[1].image.tobytes()
    alone = gen.generate([b])[0].image  # batch of one: other kernel shapes, same noise
    assert np.abs(alone.astype(int) - first[1].image.astype(int)).max() <= 1
    moved = _spec(2, seed=a.seed)  # a different spec with a's seed starts from the same noise
    assert gen.runner.generators([a.seed])[0].initial_seed() == gen.runner.generators([moved.seed])[0].initial_seed()


def test_hub_id_from_local_cache_separate_vae_and_broken_tokenizer(
    tiny: dict[str, tuple[Path, Path]], tmp_path: Path
) -> None:
    model, _ = tiny["sd"]
    snap = tmp_path / "hub" / "models--owner--tiny-sd" / "snapshots" / ("b" * 40)
    shutil.copytree(model, snap)
    (snap.parent.parent / "refs").mkdir()
    (snap.parent.parent / "refs" / "main").write_text("b" * 40)
    cfg = _cfg(tiny, mode="txt2img", model="owner/tiny-sd", cache_dir=str(tmp_path / "hub"), vae=str(model / "vae"))
    gen = DiffusionGenerator(cfg)
    assert gen.weights.pipeline.path == snap and gen.weights.vae is not None
    assert gen.generate([SPECS[0]])[0].image.shape == (64, 64, 3)

    # With its vocabulary file gone, transformers silently builds a tokenizer of 2 special tokens.
    (snap / "tokenizer" / "tokenizer.json").unlink()
    with pytest.raises(ModelUnavailableError, match="tokenizer of owner/tiny-sd has 2 tokens"):
        DiffusionGenerator(cfg)


def test_eager_attention_and_channels_last_match_the_defaults(tiny: dict[str, tuple[Path, Path]]) -> None:
    from diffusers.models.attention_processor import AttnProcessor

    ref = DiffusionGenerator(_cfg(tiny, mode="controlnet")).generate([SPECS[0]])[0].image
    gen = DiffusionGenerator(_cfg(tiny, mode="controlnet", attention="eager", channels_last=True))
    pipe = gen.runner.pipe
    assert all(isinstance(p, AttnProcessor) for p in pipe.unet.attn_processors.values())
    assert pipe.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    out = gen.generate([SPECS[0]])[0].image
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 2


def test_attention_backend_without_effect_is_an_error(tiny: dict[str, tuple[Path, Path]]) -> None:
    with pytest.raises(ConfigError, match="'native' has no effect"):
        DiffusionGenerator(_cfg(tiny, mode="txt2img", attention="native"))


def test_size_must_be_a_multiple_of_8(tiny: dict[str, tuple[Path, Path]]) -> None:
    cfg = _cfg(tiny).model_copy(update={"width": 100})
    with pytest.raises(ConfigError, match="generate.width: 100 is not a multiple of 8"):
        DiffusionGenerator(cfg)


def test_generate_stage_writes_diffusion_rows(tiny: dict[str, tuple[Path, Path]], tmp_path: Path) -> None:
    from synthgen.generate.stage import generate_shard
    from synthgen.paths import Layout
    from synthgen.plan.planner import plan_specs
    from synthgen.spec import write_plan

    model, controlnet = tiny["sd"]
    params = parse_params({
        "data_dir": str(tmp_path / "data"),
        "plan": {"n": 3, "identities": 3, "shard_size": 3,
                 "attributes": {"lighting": {"dist": "categorical", "values": ["rgb", "nir"]}}},
        "generate": {"backend": "diffusion", "width": 64, "height": 64,
                     "diffusion": {"model": str(model), "controlnet": str(controlnet), "controlnet_subfolder": None,
                                   "mode": "controlnet", "steps": 2, "batch_size": 2}},
    })
    specs = plan_specs(params.plan, params.seed)
    write_plan(specs, Layout.from_params(params).plan_file, params.plan.shard_size)
    table = pq.read_table(generate_shard(params, 0))
    rows = table.to_pylist()
    assert [r["sample_id"] for r in rows] == [s.sample_id for s in specs]
    for spec, row in zip(specs, rows):
        assert row["generator"] == "diffusion" and row["generator_version"].startswith("1.0+sd.")
        assert row["prompt"] == build_prompt(spec, params.generate.diffusion).positive
        img = cv2.imdecode(np.frombuffer(row["image"]["bytes"], np.uint8), cv2.IMREAD_UNCHANGED)
        assert img.shape == ((64, 64) if spec.lighting == "nir" else (64, 64, 3))
        assert row["control_image"]["bytes"] and len(row["req_landmarks_478"]) == 478 * 2
        assert row["req_age"] == spec.age and row["req_lighting"] == spec.lighting


def test_shards_split_over_processes() -> None:
    shards = [5, 0, 3, 1, 2, 4, 6]
    parts = [shards_for_process(shards, i, 3) for i in range(3)]
    assert parts == [[0, 3, 6], [1, 4], [2, 5]]
    assert sorted(sum(parts, [])) == sorted(shards)
    assert my_shards(shards) == sorted(shards)  # not launched: one process does everything
    with pytest.raises(ValueError):
        shards_for_process(shards, 3, 3)


@pytest.mark.slow
def test_launched_generate_splits_shards_over_processes(tmp_path: Path) -> None:
    """`synthgen generate` under a launcher (WORLD_SIZE=2, gloo on the CPU): each process renders its
    own shards, together they complete the stage, and the shards equal a single-process run's."""
    import os
    import socket
    import subprocess
    import sys

    from helpers import tiny_params

    from synthgen.paths import Layout
    from synthgen.stages import run_generate, run_plan

    sets = ["--set", f"data_dir={tmp_path / 'dist'}", "--set", "plan.n=8", "--set", "plan.shard_size=2",
            "--set", "plan.identities=4", "--set", "generate.width=64", "--set", "generate.height=64"]
    single = tiny_params(tmp_path / "single", n=8, shard_size=2, size=64, plan={"identities": 4})
    run_plan(single)
    run_generate(single, progress=False)
    subprocess.run([sys.executable, "-m", "synthgen", "plan", *sets], check=True, capture_output=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = []
    for rank in (0, 1):
        env = os.environ | {"WORLD_SIZE": "2", "RANK": str(rank), "LOCAL_RANK": str(rank), "LOCAL_WORLD_SIZE": "2",
                            "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "ACCELERATE_USE_CPU": "true"}
        procs.append(subprocess.Popen([sys.executable, "-m", "synthgen", "generate", "-q", *sets], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    for rank, out in enumerate(outs):  # each process rendered its own half, none rendered everything
        assert f"process {rank} of 2 runs 2 of 4 generated shard(s)" in out, out
    dist = Layout(tmp_path / "dist", single.dataset.name, Layout.from_params(single).version).stage_dir("generated")
    ref = Layout.from_params(single).stage_dir("generated")
    names = sorted(p.name for p in ref.glob("shard-*.parquet"))
    assert names == sorted(p.name for p in dist.glob("shard-*.parquet")) and len(names) == 4
    for name in names:
        a, b = pq.read_table(ref / name), pq.read_table(dist / name)
        assert a.column("image").to_pylist() == b.column("image").to_pylist()
