"""A batched-matmul stack of S copies of any per-solution network: the alternative that `stack_bench` measures against
the engine's grouped-convolution stack, so that the stacking can be chosen from a measurement on each device.

The plain module runs under `torch.func.vmap` over its stacked parameters (PyTorch's "model ensembling" recipe), and
its convolutions are lowered to unfold + matmul (transposed ones to matmul + fold), so vmap batches every layer into
one batched matmul over the stack instead of one grouped convolution.
"""
from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode


def _pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def _check_plain(dilation, groups) -> None:
    if _pair(dilation) != (1, 1) or groups != 1:
        raise ValueError(f"matmul convolutions take dilation 1 and groups 1, got dilation={dilation} "
                                  f"groups={groups}")


def matmul_conv2d(images, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> torch.Tensor:
    """F.conv2d as unfold + matmul: images (B, C_in, H, W), weight (C_out, C_in, k, k)."""
    _check_plain(dilation, groups)
    kernel, stride, padding = weight.shape[-2:], _pair(stride), _pair(padding)
    out_shape = [(size + 2 * pad - k) // s + 1 for size, pad, k, s in zip(images.shape[-2:], padding, kernel, stride)]
    out = weight.flatten(1) @ F.unfold(images, kernel, padding=padding, stride=stride)
    if bias is not None:
        out = out + bias[:, None]
    return out.unflatten(-1, out_shape)


def matmul_conv_transpose2d(images, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                            dilation=1) -> torch.Tensor:
    """F.conv_transpose2d as matmul + fold: images (B, C_in, H, W), weight (C_in, C_out, k, k)."""
    _check_plain(dilation, groups)
    kernel, stride, padding = weight.shape[-2:], _pair(stride), _pair(padding)
    out_shape = [(size - 1) * s - 2 * pad + k + extra for size, s, pad, k, extra
                 in zip(images.shape[-2:], stride, padding, kernel, _pair(output_padding))]
    columns = weight.flatten(1).transpose(0, 1) @ images.flatten(-2)
    out = F.fold(columns, out_shape, kernel, padding=padding, stride=stride)
    if bias is not None:
        out = out + bias[:, None, None]
    return out


_LOWERED = {F.conv2d: matmul_conv2d, torch.conv2d: matmul_conv2d,
            F.conv_transpose2d: matmul_conv_transpose2d, torch.conv_transpose2d: matmul_conv_transpose2d}


class MatmulConvolutions(TorchFunctionMode):
    """Inside this mode every 2-d convolution and transposed convolution runs as a matmul."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        return _LOWERED.get(func, func)(*args, **(kwargs or {}))


class MatmulStack:
    """S solutions (plain modules of one architecture) as stacked parameters (leading axis S) and one vmapped forward:
    `stack(*inputs)` takes and returns tensors with a leading (S, ...) axis."""

    def __init__(self, solutions: Sequence[nn.Module]):
        self.parameters, self.buffers = torch.func.stack_module_state(list(solutions))
        self._template = copy.deepcopy(solutions[0]).to("meta")
        self._forward = torch.func.vmap(self._one)

    def _one(self, parameters, buffers, *inputs):
        return torch.func.functional_call(self._template, (parameters, buffers), inputs)

    def __call__(self, *inputs):
        with MatmulConvolutions():
            return self._forward(self.parameters, self.buffers, *inputs)
