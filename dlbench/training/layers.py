"""Layers of S independent solutions computed as one operation: what a plugin stacks its network from.

Each holds its per-solution parameters with a leading solution axis S, under the same names as the plain layer, so a
stack's state dict is its solutions' state dicts stacked key by key (`stack_states`, `solution_state`). Grouped
convolutions and batched matmuls keep one launch per layer whatever S is (on a GPU, a stack of hundreds of small
networks runs at close to the speed of one).

Layouts: `StackedLinear` takes (S, B, in); the convolutions take solutions side by side on the channel axis,
(B, S·C, H, W), so that groups = S keeps them apart (`pack_channels` / `unpack_channels` convert).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn
from torch.nn import functional as F


class StackedLinear(nn.Module):
    """S independent `nn.Linear(in_features, out_features)`: (S, B, in) -> (S, B, out); weight (S, out, in)."""

    def __init__(self, num_solutions: int, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(num_solutions, out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(num_solutions, out_features))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias.unsqueeze(1), inputs, self.weight.transpose(1, 2))


class StackedConv2d(nn.Module):
    """S independent `nn.Conv2d(in, out, kernel, stride, padding)` as one grouped conv on (B, S·in, H, W);
    weight (S, out, in, k, k)."""

    def __init__(self, num_solutions: int, in_channels: int, out_channels: int, kernel: int, stride: int = 1,
                 padding: int = 0):
        super().__init__()
        self.stride, self.padding = stride, padding
        self.weight = nn.Parameter(torch.zeros(num_solutions, out_channels, in_channels, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(num_solutions, out_channels))

    def forward(self, packed: torch.Tensor) -> torch.Tensor:
        return F.conv2d(packed, self.weight.flatten(0, 1), self.bias.flatten(), stride=self.stride,
                        padding=self.padding, groups=self.weight.shape[0])


class StackedConvTranspose2d(nn.Module):
    """S independent `nn.ConvTranspose2d(in, out, kernel, stride, padding)` as one grouped conv-transpose on
    (B, S·in, H, W); weight (S, in, out, k, k)."""

    def __init__(self, num_solutions: int, in_channels: int, out_channels: int, kernel: int, stride: int = 1,
                 padding: int = 0):
        super().__init__()
        self.stride, self.padding = stride, padding
        self.weight = nn.Parameter(torch.zeros(num_solutions, in_channels, out_channels, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(num_solutions, out_channels))

    def forward(self, packed: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose2d(packed, self.weight.flatten(0, 1), self.bias.flatten(), stride=self.stride,
                                  padding=self.padding, groups=self.weight.shape[0])


def pack_channels(images: torch.Tensor) -> torch.Tensor:
    """(S, B, C, H, W) -> (B, S·C, H, W) channels-last (the CPU's grouped convolutions ran 1.2-1.3x faster on it at
    S = 4 and 16)."""
    num_solutions, batch_size, channels = images.shape[:3]
    packed = images.transpose(0, 1).reshape(batch_size, num_solutions * channels, *images.shape[3:])
    return packed.contiguous(memory_format=torch.channels_last)


def unpack_channels(packed: torch.Tensor, num_solutions: int) -> torch.Tensor:
    """(B, S·C, H, W) -> (S, B, C, H, W)."""
    batch_size, channels = packed.shape[0], packed.shape[1] // num_solutions
    return packed.reshape(batch_size, num_solutions, channels, *packed.shape[2:]).transpose(0, 1)


def stack_states(states: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The state dict of a stack of solutions from their own state dicts, in order."""
    return {name: torch.stack([state[name] for state in states]) for name in states[0]}


def solution_state(stack: nn.Module, index: int) -> dict[str, torch.Tensor]:
    """Solution `index`'s parameters as the plain network's state dict (detached copies)."""
    return {name: tensor[index].detach().clone() for name, tensor in stack.state_dict().items()}
