"""Standard normal noise by inverse-CDF lookup of 16-bit uniform draws.

Why: numpy's float32 normal sampler costs about 9 ns a value, so one 256 x 256 RGB frame's sensor
noise (and each identity's two texture noise fields) was a tenth of the render. Drawing raw bytes
and mapping each 16-bit value through a table of the normal quantile function at its bin centre
costs about a quarter of that. The values are the normal distribution quantised to 65,536
equiprobable levels (tails cut at 4.3 sigma), far finer than the uint8 pixels they perturb, and
deterministic for the generator's state like any other draw.
"""

from __future__ import annotations

from functools import lru_cache
from statistics import NormalDist

import numpy as np

_LEVELS = 1 << 16


@lru_cache(maxsize=1)
def _quantiles() -> np.ndarray:
    inv = NormalDist().inv_cdf
    table = np.array([inv((i + 0.5) / _LEVELS) for i in range(_LEVELS)], np.float32)
    table -= table.mean()  # exactly zero-mean; the unit variance is off by under 1e-4
    table.setflags(write=False)
    return table


def standard_normal(rng: np.random.Generator, shape: int | tuple[int, ...]) -> np.ndarray:
    """float32 standard normal draws of ``shape`` from ``rng`` (see the module docstring)."""
    n = int(np.prod(shape))
    codes = np.frombuffer(rng.bytes(2 * n), dtype="<u2")
    return np.take(_quantiles(), codes).reshape(shape)
