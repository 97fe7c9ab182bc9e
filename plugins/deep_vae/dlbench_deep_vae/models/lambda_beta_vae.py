"""λβ-VAE (the paper's): the β-VAE plus λ·‖x − sigmoid(logits)‖², each λ continuing its (β, seed)'s β-VAE."""
from __future__ import annotations

from dlbench_deep_vae.factory import model_factory
from dlbench_deep_vae.models.beta_vae import BetaVAE
from dlbench_deep_vae.objective import Axis, Objective


class LambdaBetaVAE(Objective):
    model = "lambda_beta_vae"
    axes = {"beta": BetaVAE.axes["beta"],
            "lambda": Axis("lambdas", (0, 2, 4, 6, 8), "the λ grid (weights >= 0 of the L2 reconstruction penalty; "
                           "λ = 0 continues the β-VAE)", "a non-empty list of distinct numbers >= 0",
                           lambda value: value >= 0)}
    default_steps = 50_000  # the λ stage; the β stage is lambda_beta_vae.beta_steps (150,000)
    default_architecture = "paper"
    continues = BetaVAE

    def regularizer(self, kl, outputs, values, batch):
        return {"regularizer": values["beta"] * kl}

    def loss(self, terms, outputs, values, batch):
        # The penalty comes last, as the paper writes the loss: recon + β·KL + λ·‖x − x̂‖².
        regularizer = self.regularizer(terms["kl"], outputs, values, batch)["regularizer"]
        return {"regularizer": regularizer, "total": terms["recon"] + regularizer + values["lambda"] * terms["l2"]}


lambda_beta_vae = model_factory(LambdaBetaVAE, "λβ-VAE: the β-VAE plus λ·‖x − sigmoid(logits)‖², continued from "
                                "each (β, seed)'s β-VAE per λ.")
