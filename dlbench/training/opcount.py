"""Counting what one training step asks of the device: every aten operation (on a GPU, about one kernel launch each)
and every host synchronisation (a value read back to Python, or an operation whose output size depends on data).

    with OperationCounter() as counter:
        stack.train_step()
    counter.operations, counter.host_reads, counter.host_inputs

A step a GPU can queue back to back (or capture in a CUDA graph) makes no host reads, makes no tensor from Python data
(on a GPU a copy from the host, which a capture refuses), and its operation count does not grow with the number of
solutions in the stack.
"""
from __future__ import annotations

from collections import Counter

import torch
from torch.utils._python_dispatch import TorchDispatchMode

# Operations that read a device value back to the host, or whose output shape depends on device data (so the host
# waits for it): each drains a GPU's queue.
HOST_READS = frozenset({"aten._local_scalar_dense", "aten.item", "aten.nonzero", "aten.masked_select",
                        "aten.unique", "aten._unique2", "aten.is_nonzero", "aten.equal", "aten.allclose",
                        "aten.repeat_interleave"})
# Shape and metadata queries that launch nothing.
NOT_LAUNCHED = frozenset({"aten.view", "aten._unsafe_view", "aten.detach", "aten.alias", "aten.t", "aten.transpose",
                          "aten.permute", "aten.expand", "aten.unsqueeze", "aten.squeeze", "aten.select",
                          "aten.slice", "aten.as_strided", "aten.unflatten", "aten.split", "aten.lift_fresh",
                          "aten.reshape", "aten.flatten", "aten.diagonal", "aten.unbind", "aten.empty",
                          "aten.empty_like", "aten.empty_strided", "aten.new_empty", "aten.new_empty_strided",
                          "aten.set_", "aten.resize_", "aten.is_same_size"})


# Counted beside the operations: what moves between host and device (on a GPU, a copy that drains or breaks a queue).
DEVICE_TO_HOST, FROM_HOST_DATA = "device-to-host copy", "tensor from host data"


def _packet_name(func) -> str:
    return f"aten.{func.__name__.split('.')[0]}" if hasattr(func, "__name__") else str(func)


class OperationCounter(TorchDispatchMode):
    """Counts the aten operations dispatched inside it (views and metadata queries aside), the host reads among them,
    and copies from a non-CPU device to the CPU."""

    def __init__(self):
        super().__init__()
        self.counts: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = _packet_name(func.overloadpacket)
        if name not in NOT_LAUNCHED:
            self.counts[name] += 1
        if name in ("aten._to_copy", "aten.copy_") and _device_to_host(func, args, kwargs or {}):
            self.counts[DEVICE_TO_HOST] += 1
        if name == "aten.lift_fresh":  # torch.tensor / as_tensor of Python data
            self.counts[FROM_HOST_DATA] += 1
        return func(*args, **(kwargs or {}))

    @property
    def operations(self) -> int:
        return sum(count for name, count in self.counts.items() if name not in (DEVICE_TO_HOST, FROM_HOST_DATA))

    @property
    def host_reads(self) -> int:
        return sum(self.counts[name] for name in HOST_READS) + self.counts[DEVICE_TO_HOST]

    @property
    def host_inputs(self) -> int:
        return self.counts[FROM_HOST_DATA]

    def host_traffic(self) -> dict[str, int]:
        """Each host read and tensor from host data counted, by name."""
        return {name: count for name, count in self.counts.items()
                if count and (name in HOST_READS or name in (DEVICE_TO_HOST, FROM_HOST_DATA))}


def _device_to_host(func, args, kwargs) -> bool:
    tensors = [a for a in args if isinstance(a, torch.Tensor)]
    if func.overloadpacket.__name__ == "copy_" and len(tensors) >= 2:
        return tensors[0].device.type == "cpu" and tensors[1].device.type != "cpu"
    target = kwargs.get("device")
    return bool(tensors) and tensors[0].device.type != "cpu" and target is not None \
        and torch.device(target).type == "cpu"


def count_step(problem, plan, dataset) -> OperationCounter:
    """The operations of one CPU step of `problem`'s stack of every solution in `plan` (after a first step, which
    creates the optimisers' state and draws the first noise block)."""
    import tempfile

    from dlbench.fitting import FitContext
    from dlbench.training.stack import TrainingStack

    with tempfile.TemporaryDirectory() as workdir:
        solutions = list(range(len(plan.seeds)))
        stack = TrainingStack(problem, plan, dataset, FitContext("cpu", 0, workdir, progress=False), solutions)
        stack.train_step()
        with OperationCounter() as counter:
            stack.train_step()
    return counter


def check_capturable_step(problem, plan, dataset) -> None:
    """Fail with the culprits where a step of `problem` reads a value back to the host or makes a tensor from Python
    data: a GPU could not queue such steps back to back, and `training.cuda_graphs` could not capture them. For a
    plugin's tests (on the CPU)."""
    culprits = count_step(problem, plan, dataset).host_traffic()
    if culprits:
        raise AssertionError(f"a training step of {type(problem).__name__} makes host reads or tensors from host data "
                             f"({culprits}); keep every value the step needs on the device, made before training")
