"""AnnealedVAE (Burgess et al. 2018): γ·|KL − C(t)|, the capacity C rising linearly to c_max."""
from __future__ import annotations

import torch

from dlbench_deep_vae.factory import model_factory
from dlbench_deep_vae.objective import Axis, Objective, Setting


def capacity(step: torch.Tensor, c_max: torch.Tensor, iteration_threshold: float) -> torch.Tensor:
    """C(t) = min(c_max, c_max·t / iteration_threshold) at the global step t (0-based)."""
    return torch.minimum(c_max, c_max * step.to(c_max.dtype) / iteration_threshold)


class AnnealedVAE(Objective):
    model = "annealed_vae"
    axes = {"c_max": Axis("c_maxes", (5, 10, 25, 50, 75, 100), "the c_max grid (final capacities, nats > 0)")}
    settings = {"gamma": Setting(1000, "the weight γ of |KL − C(t)|"),
                "iteration_threshold": Setting(100_000, "the step at which the capacity reaches c_max",
                                               "an integer > 0", lambda value: value > 0 and float(value).is_integer())}

    def regularizer(self, kl, outputs, values, batch):
        target = capacity(batch.step, values["c_max"], self.values["iteration_threshold"])
        return {"regularizer": self.values["gamma"] * (kl - target).abs(), "capacity": target}


annealed_vae = model_factory(AnnealedVAE, "AnnealedVAE: γ·|KL − C(t)| with the capacity C rising linearly to c_max, "
                             "a (c_max, seed) grid.")
