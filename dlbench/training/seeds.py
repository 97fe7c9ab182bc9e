"""Every seed a training stage derives, in one place: each solution's randomness for one purpose comes from its own
seed and that purpose alone, so it never depends on the other solutions of its stack or run."""
from __future__ import annotations

import numpy as np

# The purposes a solution's seed is split into (the numbers are part of every record's reproducibility).
PROBE = 0  # the memory probe's throwaway batch
DATA_ORDER = 1  # the solution's shuffled epochs
NOISE = 2  # the solution's draws during training (reparameterisation noise, permutations)
AUXILIARY = 3  # the initial weights of a network trained beside the model (FactorVAE's discriminator)


def derived_seed(seed: int, purpose: int) -> int:
    """A 32-bit seed for one purpose of `seed`, independent of every other (seed, purpose)."""
    return int(np.random.SeedSequence([seed, purpose]).generate_state(1)[0])


def solution_seed(run_seed: int, seed: int) -> int:
    """The seed of grid seed `seed` in a run seeded `run_seed`: its initial weights and, through `derived_seed`, its
    data order and noise."""
    return derived_seed(run_seed, seed)


def continuation_seed(stage_seed: int) -> int:
    """The seed of a stage that continues a trained solution (the λ stage of a λβ-VAE): a different data order and
    noise from the stage it continues, the same for every setting continued from one solution."""
    return stage_seed + 1
