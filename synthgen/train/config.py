"""Parameters of the `train` stage (the `train:` section of params.yaml).

Kept free of torch imports: ``synthgen.config`` assembles every section at CLI start-up, and a
``synthgen plan`` must not pay for importing torch.
"""

from __future__ import annotations

from typing import Literal, Protocol

from pydantic import Field, field_validator, model_validator

from synthgen.sections import RunParams, Section

Task = Literal["gaze", "head_pose", "age", "expression"]
TASKS: tuple[str, ...] = ("gaze", "head_pose", "age", "expression")
LabelSource = Literal["req", "meas"]
Adaptation = Literal["linear", "partial", "lora", "full"]


class LabelSources(Section):
    """Where each task's targets come from: ``req`` = what was asked of the generator (exact on the
    procedural backend), ``meas`` = what the labellers measured (the only choice for real data)."""

    gaze: LabelSource = "req"
    head_pose: LabelSource = "req"
    age: LabelSource = "req"
    expression: LabelSource = "req"

    def of(self, task: str) -> str:
        return getattr(self, task)


class LossParams(Section):
    weighting: Literal["fixed", "uncertainty"] = Field(
        "uncertainty",
        description="'uncertainty' learns one log-variance per task (Kendall et al. 2018); "
        "'fixed' uses task_weights as given",
    )
    task_weights: dict[str, float] = Field(
        default_factory=lambda: {t: 1.0 for t in TASKS},
        description="fixed weight per task (also multiplies the uncertainty-weighted terms)",
    )

    @field_validator("task_weights")
    @classmethod
    def _known(cls, v: dict[str, float]) -> dict[str, float]:
        bad = sorted(set(v) - set(TASKS))
        if bad:
            raise ValueError(f"unknown task(s) {bad}; tasks are {list(TASKS)}")
        if any(w < 0 for w in v.values()):
            raise ValueError("weights must be >= 0")
        return v


class LoraParams(Section):
    rank: int = Field(8, ge=1, le=256)
    alpha: float = Field(16.0, gt=0)
    dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: list[str] | None = Field(
        None, description="module name suffixes; None = chosen for the backbone family"
    )
    train_norms: bool = Field(
        True,
        description="also train normalisation layers' scale/shift (a few thousand numbers); needed "
        "from random init, where timm zero-initialises each ResNet block's last BatchNorm scale and "
        "a frozen zero would block every gradient to the adapters in that block",
    )


class CurriculumParams(Section):
    """Easy first: during the first ``warmup_epochs`` only near-frontal synthetic rows are used."""

    enabled: bool = False
    warmup_epochs: int = Field(1, ge=0)
    max_gaze_deg: float = Field(20.0, gt=0, description="|gaze yaw| and |gaze pitch| of an easy row")
    max_head_deg: float = Field(20.0, gt=0, description="|head yaw|, |pitch|, |roll| of an easy row")
    synthetic_first: bool = Field(True, description="real rows (source=real) only after the warm-up")


class TrainParams(Section):
    tasks: list[Task] = Field(default_factory=lambda: list(TASKS))
    labels: LabelSources = LabelSources()
    ood_labels: LabelSources = Field(
        default_factory=lambda: LabelSources(gaze="meas", head_pose="meas", age="meas", expression="meas"),
        description="label sources in the out-of-distribution (real) set",
    )

    backbone: str = Field("resnet18", description="any timm model name (resnet*, vit_*, convnext_*, ...)")
    pretrained: bool = Field(False, description="load the backbone's published weights (hub cache or weights)")
    weights: str | None = Field(
        None,
        description="local weights file (.safetensors/.pth/.bin) or 'hf-hub:<repo>' for the backbone",
    )
    adaptation: Adaptation = "full"
    partial_blocks: int = Field(1, ge=1, description="blocks trained by 'partial' (from the top)")
    lora: LoraParams = LoraParams()
    loss: LossParams = LossParams()
    head_hidden: int = Field(0, ge=0, description="hidden width of each head's MLP; 0 = linear heads")
    dropout: float = Field(0.1, ge=0, lt=1)

    image_size: int = Field(112, ge=32, le=1024)
    batch_size: int = Field(32, ge=1, le=4096)
    epochs: int = Field(5, ge=1, le=10_000)
    max_steps: int = Field(0, ge=0, description="stop after this many optimiser steps; 0 = no limit")
    lr: float = Field(1e-3, gt=0)
    head_lr_mult: float = Field(1.0, gt=0, description="heads learn this much faster than the backbone")
    weight_decay: float = Field(0.05, ge=0)
    warmup_steps: int = Field(20, ge=0)
    grad_clip: float = Field(5.0, ge=0, description="max gradient norm; 0 = off")

    balance: list[Task] = Field(
        default_factory=lambda: ["expression", "age", "gaze"],
        description="tasks whose classes are sampled with inverse frequency (empty = plain shuffle)",
    )
    curriculum: CurriculumParams = CurriculumParams()

    workers: int = Field(1, ge=0, le=64, description="DataLoader worker processes (0 = in the main process)")
    threads: int = Field(
        0, ge=0, le=256,
        description="CPU compute threads; 0 = cores minus loader workers (oversubscribed OpenMP "
        "threads spin and can make a step several times slower)",
    )
    prefetch: int = Field(4, ge=1, le=64, description="batches each worker prepares ahead")
    mixed_precision: Literal["auto", "no", "fp16", "bf16"] = Field(
        "auto", description="'auto' = bf16 on a GPU that supports it, else fp16 on GPU, 'no' on CPU"
    )
    resume: bool = Field(True, description="continue from the last checkpoint of the same config")
    eval_splits: list[Literal["val", "test"]] = Field(default_factory=lambda: ["val", "test"])
    ood: str | None = Field(
        "demo",
        description="out-of-distribution set: 'demo' (real faces shipped in packages), a Parquet "
        "file/folder in the row contract, or null to skip",
    )
    eval_batch_size: int = Field(64, ge=1, le=4096)
    log_every: int = Field(1, ge=1, description="steps between rows of train_log.csv")

    @model_validator(mode="after")
    def _consistent(self) -> "TrainParams":
        if not self.tasks:
            raise ValueError("tasks must name at least one of " + ", ".join(TASKS))
        if len(set(self.tasks)) != len(self.tasks):
            raise ValueError("tasks lists a task twice")
        extra = sorted(set(self.balance) - set(self.tasks))
        if extra:
            raise ValueError(f"balance names task(s) {extra} that are not in tasks")
        return self


class TrainRun(RunParams, Protocol):
    """What the train stage reads."""

    @property
    def train(self) -> TrainParams: ...
