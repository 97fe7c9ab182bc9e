"""β-VAE (Higgins et al. 2017): the KL weighted by β."""
from __future__ import annotations

from dlbench_deep_vae.factory import model_factory
from dlbench_deep_vae.objective import Axis, Objective


class BetaVAE(Objective):
    model = "beta_vae"
    axes = {"beta": Axis("betas", (1, 4, 8, 16, 32), "the β grid (KL weights > 0)")}
    default_steps = 150_000  # the paper's β-VAE
    default_architecture = "paper"

    def regularizer(self, kl, outputs, values, batch):
        return {"regularizer": values["beta"] * kl}


beta_vae = model_factory(BetaVAE, "β-VAE: the KL weighted by β, a (β, seed) grid trained as stacks.")
