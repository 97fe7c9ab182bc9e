"""At what scale a study was made, against the protocol it reproduces: steps per solution and their share of the
protocol's, seeds or starts per setting, device, data source and package versions, as every banner, caption and
figure title of the leaderboard states them.

The protocols are the specs' (deep-protocol.md, model-zoo.md, linear-gaussian.md), keyed by model name; a model
without one is shown with its steps and no share."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from dlbench.results import RunInfo

SOURCE_LABELS = {"official": "official", "procedural": "stand-in (procedural)", "synthetic": "synthetic"}


def source_label(source: str) -> str:
    """How a data source is labelled: official data, or what stands in for it."""
    return SOURCE_LABELS.get(source, f"stand-in ({source})")


@dataclass(frozen=True)
class Protocol:
    reference: str
    steps: dict[str, int]  # hyperparameter → its value in the protocol, per solution
    replicates: int  # seeds or starts per setting


PAPER_DEEP = "the paper's protocol (deep-protocol.md)"
DLIB = "disentanglement_lib's protocol (model-zoo.md)"
PAPER_LINEAR = "the paper's linear experiment (linear-gaussian.md)"
ZOO_MODELS = ("beta_tc_vae", "factor_vae", "dip_vae_i", "dip_vae_ii", "annealed_vae")
DEEP_PROTOCOLS = {
    "beta_vae": Protocol(PAPER_DEEP, {"training_steps": 150_000}, 10),
    # Each λ continues the β-VAE of its (β, seed): a solution has the β stage's steps and its own continuation's.
    "lambda_beta_vae": Protocol(PAPER_DEEP, {"beta_steps": 150_000, "training_steps": 50_000}, 10),
    **{model: Protocol(DLIB, {"training_steps": 300_000}, 50) for model in ZOO_MODELS},
}


def protocol_for(model: str, fixed: dict[str, Any], dataset_parameters: dict[str, Any]) -> Protocol | None:
    """The protocol a study of `model` (its fixed axes, e.g. the linear model's solver) on this data reproduces."""
    if model in DEEP_PROTOCOLS:
        return DEEP_PROTOCOLS[model]
    if model != "linear_gaussian_vae":
        return None
    small = dataset_parameters.get("n") == 50  # the paper's second size has its own budgets
    budgets = {"adamw": {"adamw_iterations": 30_000 if small else 50_000},
               "fixed_point": {"max_half_steps": 50_000 if small else 100_000}}
    steps = budgets.get(fixed.get("solver"))
    return Protocol(PAPER_LINEAR, steps, 50) if steps else None


def _step_word(keys: Sequence[str]) -> str:
    if all(key.endswith("iterations") for key in keys):
        return "iterations"
    return "half-steps" if all(key.endswith("half_steps") for key in keys) else "steps"


@dataclass(frozen=True)
class Scale:
    """A study's scale, from its runs' records."""
    budget: dict[str, int]  # the runs' step counts (those the protocol names, or every one when it has none)
    protocol: Protocol | None
    replicates: tuple[int, int]  # fewest and most per setting
    replicate_kind: str  # "seeds", "starts", or the replicate axes' names
    devices: tuple[str, ...]
    source: str
    packages: tuple[str, ...]

    @property
    def steps(self) -> int | None:
        """Steps per solution; None where a step count the protocol names is not recorded."""
        keys = self.protocol.steps if self.protocol else self.budget
        return sum(self.budget[key] for key in keys) if keys and all(key in self.budget for key in keys) else None

    @property
    def share(self) -> float | None:
        """Steps per solution as a share of the protocol's."""
        if self.protocol is None or self.steps is None:
            return None
        return self.steps / sum(self.protocol.steps.values())

    def steps_text(self) -> str:
        keys = list(self.protocol.steps if self.protocol else self.budget)
        if self.steps is None:
            return "steps not recorded"
        bound = "at most " if all(key.startswith("max_") for key in keys) else ""
        parts = " + ".join(f"{key} {self.budget[key]:,}" for key in keys) if len(keys) > 1 else ""
        text = f"{bound}{self.steps:,} {_step_word(keys)}" + (f" ({parts})" if parts else "")
        if self.share is not None:
            text += f", {100 * self.share:.3g} % of the protocol's {sum(self.protocol.steps.values()):,}"
        return text

    def compact(self) -> str:
        """Steps per solution and their share of the protocol's, e.g. "2,500 steps (1.25 %)"."""
        if self.steps is None:
            return "steps not recorded"
        keys = list(self.protocol.steps if self.protocol else self.budget)
        return f"{self.steps:,} {_step_word(keys)}" + (f" ({100 * self.share:.3g} %)" if self.share is not None else "")

    def replicates_text(self) -> str:
        fewest, most = self.replicates
        return f"{fewest}{'' if fewest == most else f'–{most}'} {self.replicate_kind}"

    def short(self) -> str:
        """For titles and captions: steps, share, replicates, device and data."""
        return (f"{self.steps_text()}; {self.replicates_text()}; {', '.join(self.devices) or 'device not recorded'}; "
                f"{source_label(self.source)} data")

    def long(self) -> str:
        protocol = f" against {self.protocol.reference}" if self.protocol else " (no reference protocol known)"
        return f"{self.short()}; {', '.join(self.packages)}{protocol}"


def _replicate_kind(runs: Sequence[RunInfo]) -> str:
    axes = sorted({axis for run in runs for axis in run.replicate_axes})
    return {("seed",): "seeds", ("start",): "starts"}.get(tuple(axes), " × ".join(axes) or "replicates")


def study_scale(runs: Sequence[RunInfo], fixed: dict[str, Any], replicate_counts: Sequence[int]) -> Scale:
    """The scale of a study made of `runs` (one model, dataset, source and config) whose settings have
    `replicate_counts` solutions each."""
    first = runs[0]
    protocol = protocol_for(first.model, fixed, first.facts["dataset_parameters"])
    budget = dict(first.facts["budget"])
    packages = dict.fromkeys(f"{name} {version}" for run in runs
                             for name, version in run.facts["packages"].items())
    packages.update(dict.fromkeys(f"{run.plugin_distribution} {run.plugin_version}" for run in runs
                                  if run.plugin_distribution))
    devices = tuple(dict.fromkeys(run.facts["device"] for run in runs if run.facts["device"]))
    return Scale(budget, protocol, (min(replicate_counts, default=0), max(replicate_counts, default=0)),
                 _replicate_kind(runs), devices, first.source, tuple(packages))
