"""Distributions that params.yaml can declare for a scene attribute.

Each is a small pydantic model with a ``dist`` tag, so params.yaml reads naturally::

    age: {dist: truncnormal, mean: 38, std: 14, low: 18, high: 80}
    expression: {dist: categorical, values: [neutral, happiness], weights: [3, 1]}
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy.stats import truncnorm


class _Dist(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def support(self) -> tuple[float, float] | list[Any]:
        raise NotImplementedError

    def sample(self, rng: np.random.Generator) -> Any:
        raise NotImplementedError


class Constant(_Dist):
    dist: Literal["constant"] = "constant"
    value: float | int | str | bool

    def support(self) -> Any:
        if isinstance(self.value, (int, float)) and not isinstance(self.value, bool):
            return (float(self.value), float(self.value))
        return [self.value]

    def sample(self, rng: np.random.Generator) -> Any:
        return self.value


class Uniform(_Dist):
    dist: Literal["uniform"] = "uniform"
    low: float
    high: float

    @model_validator(mode="after")
    def _order(self) -> "Uniform":
        if self.high < self.low:
            raise ValueError(f"high ({self.high}) must be >= low ({self.low})")
        return self

    def support(self) -> tuple[float, float]:
        return (self.low, self.high)

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(self.low, self.high))


class TruncNormal(_Dist):
    """Normal(mean, std) restricted to [low, high]: the usual shape for age or head pose."""

    dist: Literal["truncnormal", "normal"] = "truncnormal"
    mean: float
    std: float = Field(gt=0)
    low: float
    high: float

    @model_validator(mode="after")
    def _order(self) -> "TruncNormal":
        if self.high <= self.low:
            raise ValueError(f"high ({self.high}) must be > low ({self.low})")
        return self

    def support(self) -> tuple[float, float]:
        return (self.low, self.high)

    def sample(self, rng: np.random.Generator) -> float:
        a, b = (self.low - self.mean) / self.std, (self.high - self.mean) / self.std
        return float(truncnorm.rvs(a, b, loc=self.mean, scale=self.std, random_state=rng))


class Categorical(_Dist):
    dist: Literal["categorical"] = "categorical"
    values: list[str | int | float | bool] = Field(min_length=1)
    weights: list[float] | None = None

    @model_validator(mode="after")
    def _weights(self) -> "Categorical":
        if self.weights is not None:
            if len(self.weights) != len(self.values):
                raise ValueError(
                    f"weights has {len(self.weights)} entries but values has {len(self.values)}"
                )
            if any(w < 0 for w in self.weights) or sum(self.weights) <= 0:
                raise ValueError("weights must be >= 0 with a positive sum")
        return self

    def support(self) -> list[Any]:
        return list(self.values)

    def probabilities(self) -> np.ndarray:
        w = np.ones(len(self.values)) if self.weights is None else np.asarray(self.weights, float)
        return w / w.sum()

    def sample(self, rng: np.random.Generator) -> Any:
        return self.values[int(rng.choice(len(self.values), p=self.probabilities()))]


Distribution = Annotated[
    Union[Constant, Uniform, TruncNormal, Categorical], Field(discriminator="dist")
]
