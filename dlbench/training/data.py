"""Each solution's data order: shuffled epochs drawn from its own generator, batches gathered on the device.

A solution's batches depend on its seed alone, never on which other solutions share its stack, so a
solution trained inside a stack sees exactly the data it would see trained alone. Resuming needs only
each generator's state at the start of the current epoch: the epoch's permutation is drawn again from
it, which also leaves the generator exactly where it was.

Where the memory allows, every observation is made once before training (a stand-in rendered, a published
file's images laid out as the model takes them) and a step's data is one gather: always on a GPU, and on a
CPU when the training would render at least as many images anyway.
"""
from __future__ import annotations

import sys
import weakref
from typing import Any, Sequence

import torch

from dlbench.interfaces import DiscreteGroundTruthDataset
from dlbench.resources import available_bytes

# Resident observations take at most this share of the device's free memory.
RESIDENT_SHARE = 0.3
RENDER_CHUNK = 4096
_resident: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def resident_observations(dataset: DiscreteGroundTruthDataset, images_needed: int) -> torch.Tensor | None:
    """Every observation of `dataset` in index order on its device, made once and shared by every stack trained on
    it; None where it would not fit, or (on a CPU) where training needs fewer images than the dataset holds."""
    if dataset in _resident:
        return _resident[dataset]
    first = dataset.observations_from_factors(dataset.factors_from_indices(
        torch.zeros(1, dtype=torch.int64, device=dataset.device)))
    size = len(dataset) * first.element_size() * first[0].numel()
    worth_it = dataset.device.type == "cuda" or len(dataset) <= images_needed
    if not worth_it or size > RESIDENT_SHARE * available_bytes(dataset.device):
        return None
    if len(dataset) > 10 * RENDER_CHUNK:
        print(f"dlbench: making the {len(dataset):,} observations of {dataset.name} resident on {dataset.device} "
              f"({size / 2**30:.1f} GiB) before training", file=sys.stderr, flush=True)
    parts = []
    for start in range(0, len(dataset), RENDER_CHUNK):
        indices = torch.arange(start, min(start + RENDER_CHUNK, len(dataset)), device=dataset.device)
        parts.append(dataset.observations_from_factors(dataset.factors_from_indices(indices)))
    images = torch.cat(parts)
    _resident[dataset] = images
    return images


class ShuffledBatches:
    """Batches of `batch_size` observations per solution, each solution shuffling the whole dataset once per
    epoch with its own generator and dropping the last incomplete batch (the paper's protocol).

    `begin_step(step)` does the host's part of a step (a new epoch's shuffle, the batch's offset written into a
    device tensor); `current_observations()` is the device's part, reading device tensors only, so a captured CUDA
    graph replays it for any step."""

    def __init__(self, dataset: DiscreteGroundTruthDataset, seeds: Sequence[int], batch_size: int,
                 total_steps: int = 0):
        self.dataset = dataset
        self.resident = resident_observations(dataset, total_steps * batch_size * len(seeds))
        self.batch_size = batch_size
        self.num_observations = len(dataset)
        self.steps_per_epoch = self.num_observations // batch_size
        self.generators = [torch.Generator(device=dataset.device).manual_seed(seed) for seed in seeds]
        self.epoch = -1
        self.epoch_start_states: list[torch.Tensor] = []
        # Filled in place (never reallocated): a captured graph reads them at fixed addresses.
        self.permutations = torch.empty(len(seeds), self.num_observations, dtype=torch.int64, device=dataset.device)
        self.batch_offsets = torch.arange(batch_size, device=dataset.device)
        self.offset = torch.zeros(1, dtype=torch.int64, device=dataset.device)

    def _start_epoch(self, epoch: int) -> None:
        self.epoch_start_states = [generator.get_state() for generator in self.generators]
        for row, generator in zip(self.permutations, self.generators):
            row.copy_(torch.randperm(self.num_observations, generator=generator, device=self.dataset.device))
        self.epoch = epoch

    def begin_step(self, step: int) -> None:
        """The host's part of `step` (steps count from 0 across epochs)."""
        epoch, position = divmod(step, self.steps_per_epoch)
        if epoch != self.epoch:
            if epoch != self.epoch + 1 and self.epoch >= 0:
                raise ValueError(f"steps must advance one epoch at a time (at epoch {self.epoch}, asked {epoch})")
            self._start_epoch(epoch)
        self.offset.fill_(position * self.batch_size)

    def current_indices(self) -> torch.Tensor:
        """(S, batch_size) observation indices of the step begun last."""
        return self.permutations.index_select(1, self.offset + self.batch_offsets)

    def current_observations(self) -> torch.Tensor:
        """(S, batch_size, *observation_shape) observations of the step begun last, as the dataset stores them
        (uint8 images)."""
        indices = self.current_indices()
        if self.resident is not None:
            return self.resident[indices]
        factors = self.dataset.factors_from_indices(indices.reshape(-1))
        batch = self.dataset.observations_from_factors(factors)
        return batch.view(*indices.shape, *batch.shape[1:])

    def state(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "epoch_start_states": self.epoch_start_states}

    def load_state(self, state: dict[str, Any]) -> None:
        if state["epoch"] < 0:
            return
        for generator, saved in zip(self.generators, state["epoch_start_states"]):
            generator.set_state(saved)
        self._start_epoch(state["epoch"])
