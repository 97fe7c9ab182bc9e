"""Helpers of the engine's tests."""
from __future__ import annotations

from dlbench import FitInterrupted


def interrupt_at_save(count: int):
    """An `after_checkpoint` hook that interrupts the fit right after its `count`-th checkpoint (the first is the
    stage's layout, then the stack's, every `checkpoint_every` steps)."""
    saves = []

    def after_checkpoint():
        saves.append(1)
        if len(saves) == count:
            raise FitInterrupted

    return after_checkpoint
