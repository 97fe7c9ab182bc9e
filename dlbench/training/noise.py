"""Each solution's random draws during training, from its own generator, drawn a block of steps at a time.

A step's draws are a slice of blocks drawn every `BLOCK_STEPS` steps, so a stack of S solutions launches S draws per
block instead of S per step, and a solution's draws still come from its generator alone (the same in any stack).
Resuming needs each generator's state at the start of the current block: the block is drawn again from it.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch

BLOCK_STEPS = 64


class NoiseStreams:
    """Per-solution draws for the steps of a stage; `begin_step(step)` before each step's draws."""

    def __init__(self, generators: Sequence[torch.Generator], device: torch.device, block_steps: int = BLOCK_STEPS):
        self.generators, self.device, self.block_steps = list(generators), device, block_steps
        self.block_start_states = [generator.get_state() for generator in self.generators]
        self.blocks: list[torch.Tensor] = []
        self.position = self.draws = 0

    def begin_step(self, step: int) -> None:
        self.position, self.draws = step % self.block_steps, 0
        if self.position == 0:  # a new block: the draws of the last one are spent
            self.block_start_states = [generator.get_state() for generator in self.generators]
            self.blocks = []

    def draw(self, sampler: Callable, shape: Sequence[int]) -> torch.Tensor:
        """This step's (S, *shape) draws of the step's next `sampler` call (torch.randn or torch.rand)."""
        if self.draws == len(self.blocks):
            self.blocks.append(torch.stack([sampler(self.block_steps, *shape, generator=generator,
                                                    device=generator.device) for generator in self.generators])
                               .to(self.device))
        block = self.blocks[self.draws]
        self.draws += 1
        return block[:, self.position]

    def state(self) -> list[Any]:
        return self.block_start_states

    def load_state(self, states: Sequence[torch.Tensor]) -> None:
        """Back to the start of the saved block; its draws are drawn again when first asked for."""
        for generator, saved in zip(self.generators, states):
            generator.set_state(saved)
        self.block_start_states, self.blocks = list(states), []
