"""A CUDA out-of-memory in the diffusion backend is transient: the batch is split and retried
smaller, with the same pixels up to rounding (each sample's noise comes from its own seed). Only the GPU part is
mocked: a wrapper around the real tiny pipeline raises torch.OutOfMemoryError for batches larger
than a "card" would hold, as CUDA would; everything else runs for real on the CPU."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from synthgen.generate.config import GenerateParams  # noqa: E402
from synthgen.generate.diffusion.backend import DiffusionGenerator  # noqa: E402
from synthgen.generate.diffusion.tiny import save_tiny  # noqa: E402
from synthgen.spec import SceneSpec  # noqa: E402


class SmallCard:
    """Stands in for a GPU with room for ``fits`` images per batch: the only mocked part."""

    def __init__(self, pipe: Any, fits: int) -> None:
        self.pipe, self.fits, self.batches = pipe, fits, []

    def __call__(self, **kw: Any) -> Any:
        n = len(kw["prompt"])
        self.batches.append(n)
        if n > self.fits:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.pipe(**kw)


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> GenerateParams:
    torch.set_num_threads(1)
    model, controlnet = save_tiny(tmp_path_factory.mktemp("tiny-sd"), "sd")
    return GenerateParams(backend="diffusion", width=64, height=64, diffusion={
        "model": str(model), "controlnet": str(controlnet), "controlnet_subfolder": None, "steps": 2,
        "batch_size": 4, "scheduler": "ddim", "mode": "controlnet"})


SPECS = [SceneSpec(sample_id=f"s{i}", index=i, seed=500 + i, identity=i, identity_seed=3 + i, age=25 + 5 * i,
                   gender=("female", "male")[i % 2], skin_tone=1 + i)
         for i in range(5)]


def test_out_of_memory_retries_with_smaller_batches_same_pixels(cfg: GenerateParams) -> None:
    reference = [s.image for s in DiffusionGenerator(cfg).generate(SPECS)]
    gen = DiffusionGenerator(cfg)
    card = SmallCard(gen.runner.pipe, fits=1)
    gen.runner.pipe = card
    images = [s.image for s in gen.generate(SPECS)]
    # 4 fails, 2 fails, then ones; the next chunk starts at the size that worked
    assert card.batches[:3] == [4, 2, 1] and max(card.batches[3:]) == 1
    assert gen.max_batch == 1
    # same noise per sample; a batch of one uses other kernel shapes, so at most 1 grey level apart
    assert len(images) == len(reference)
    assert all(np.abs(a.astype(int) - b.astype(int)).max() <= 1 for a, b in zip(images, reference, strict=True))


def test_out_of_memory_at_batch_one_is_permanent(cfg: GenerateParams) -> None:
    gen = DiffusionGenerator(cfg)
    gen.runner.pipe = SmallCard(gen.runner.pipe, fits=0)
    with pytest.raises(torch.OutOfMemoryError):
        gen.generate(SPECS[:2])
    assert gen.gpu_slots == 0  # on the CPU it holds no GPU slot
