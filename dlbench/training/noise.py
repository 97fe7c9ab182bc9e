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
    """Per-solution draws for the steps of a stage; `begin_step(step)` before each step's draws.

    `begin_step` is the host's part (a new block drawn into the same tensors, the step's position in it written into a
    device tensor); `draw` reads device tensors only, so a captured CUDA graph replays a step's draws for any step."""

    def __init__(self, generators: Sequence[torch.Generator], device: torch.device, block_steps: int = BLOCK_STEPS):
        self.generators, self.device, self.block_steps = list(generators), device, block_steps
        self.block_start_states = [generator.get_state() for generator in self.generators]
        self.samplers: list[tuple[Callable, tuple[int, ...]]] = []  # a step's draws, in order, learnt at the first
        self.blocks: list[torch.Tensor] = []
        self.fresh = 0  # blocks drawn for the current block of steps (the rest are drawn at their first use)
        self.position = torch.zeros(1, dtype=torch.int64, device=device)
        self.draws = 0

    def begin_step(self, step: int) -> None:
        position = step % self.block_steps
        self.position.fill_(position)
        self.draws = 0
        if position == 0:  # a new block: the draws of the last one are spent
            self.block_start_states = [generator.get_state() for generator in self.generators]
            self.fresh = 0
            for index in range(len(self.samplers)):
                self._draw_block(index)

    def _draw_block(self, index: int) -> None:
        sampler, shape = self.samplers[index]
        block = torch.stack([sampler(self.block_steps, *shape, generator=generator, device=generator.device)
                             for generator in self.generators]).to(self.device)
        if index < len(self.blocks):
            self.blocks[index].copy_(block)
        else:
            self.blocks.append(block)
        self.fresh = index + 1

    def draw(self, sampler: Callable, shape: Sequence[int]) -> torch.Tensor:
        """This step's (S, *shape) draws of the step's next `sampler` call (torch.randn or torch.rand)."""
        if self.draws == len(self.samplers):
            self.samplers.append((sampler, tuple(shape)))
        if self.draws == self.fresh:
            self._draw_block(self.draws)
        block = self.blocks[self.draws]
        self.draws += 1
        return block.index_select(1, self.position).squeeze(1)

    def state(self) -> list[Any]:
        return self.block_start_states

    def load_state(self, states: Sequence[torch.Tensor]) -> None:
        """Back to the start of the saved block; its draws are drawn again when first asked for."""
        for generator, saved in zip(self.generators, states):
            generator.set_state(saved)
        self.block_start_states, self.fresh = list(states), 0
