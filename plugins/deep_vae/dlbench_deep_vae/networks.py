"""The deep models' convolutional VAE for one solution, and S independent solutions stacked into one computation.

Public for plugin authors: `StackedConvVAE` is the network every objective of this plugin trains (built from
`dlbench.training.layers`), and `build_solution` / `StackedConvVAE.from_seeds` give each solution its initial weights
from its seed alone. A stack holds every parameter of the per-solution module under the same name with a leading
solution axis S, so a stack's state dict is the per-solution state dicts stacked key by key.

Initialisation: "paper" keeps PyTorch's defaults (the paper names none); "dlib_conv" is initialised as TensorFlow
initialises disentanglement_lib's layers: Glorot-uniform kernels and zero biases.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from dlbench.training.layers import (
    StackedConv2d,
    StackedConvTranspose2d,
    StackedLinear,
    pack_channels,
    stack_states,
    unpack_channels,
)

ARCHITECTURES = ("paper", "dlib_conv")
HIDDEN_UNITS = 256
ENCODER_CHANNELS = (32, 32, 64, 64)
# (kernel, padding) of the four stride-2 encoder convs; both take 64 -> 32 -> 16 -> 8 -> 4.
ENCODER_KERNELS = {
    "paper": ((4, 1), (4, 1), (4, 1), (4, 1)),
    "dlib_conv": ((4, 1), (4, 1), (2, 0), (2, 0)),
}
FEATURE_SHAPE = (64, 4, 4)
FLAT_FEATURES = 64 * 4 * 4
# Input channels of the four decoder conv-transposes (k4 s2 p1: 4 -> 8 -> 16 -> 32 -> 64); the last outputs C.
DECODER_CHANNELS = (64, 64, 32, 32)


def check_architecture(architecture: str) -> None:
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; accepted: {', '.join(map(repr, ARCHITECTURES))}")


def _encoder_conv_shapes(num_channels: int, architecture: str) -> list[tuple[int, int, int, int]]:
    """(in_channels, out_channels, kernel, padding) of each encoder conv."""
    in_channels = (num_channels, *ENCODER_CHANNELS[:-1])
    return [(c_in, c_out, kernel, padding)
            for c_in, c_out, (kernel, padding) in zip(in_channels, ENCODER_CHANNELS, ENCODER_KERNELS[architecture])]


def _decoder_conv_shapes(num_channels: int) -> list[tuple[int, int]]:
    """(in_channels, out_channels) of each decoder conv-transpose."""
    return list(zip(DECODER_CHANNELS, (*DECODER_CHANNELS[1:], num_channels)))


def reparameterise(mean: torch.Tensor, log_var: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """z = μ + σ ⊙ ε, with ε drawn by the caller."""
    return mean + torch.exp(0.5 * log_var) * noise


class ConvVAE(nn.Module):
    """One solution: the encoder gives μ and log σ² of q(z|x), the decoder the Bernoulli logits of p(x|z).
    Images (B, C, 64, 64) in [0, 1]."""

    def __init__(self, num_channels: int, num_latent: int, architecture: str = "paper"):
        super().__init__()
        check_architecture(architecture)
        self.num_channels, self.num_latent, self.architecture = num_channels, num_latent, architecture
        self.encoder_convs = nn.ModuleList(
            nn.Conv2d(c_in, c_out, kernel, stride=2, padding=padding)
            for c_in, c_out, kernel, padding in _encoder_conv_shapes(num_channels, architecture))
        self.encoder_hidden = nn.Linear(FLAT_FEATURES, HIDDEN_UNITS)
        self.mean_head = nn.Linear(HIDDEN_UNITS, num_latent)
        self.log_var_head = nn.Linear(HIDDEN_UNITS, num_latent)
        self.decoder_hidden = nn.Linear(num_latent, HIDDEN_UNITS)
        self.decoder_features = nn.Linear(HIDDEN_UNITS, FLAT_FEATURES)
        self.decoder_convs = nn.ModuleList(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1)
                                           for c_in, c_out in _decoder_conv_shapes(num_channels))

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = images
        for conv in self.encoder_convs:
            hidden = F.relu(conv(hidden))
        hidden = F.relu(self.encoder_hidden(hidden.flatten(-3)))
        return self.mean_head(hidden), self.log_var_head(hidden)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        hidden = F.relu(self.decoder_features(F.relu(self.decoder_hidden(codes))))
        hidden = hidden.unflatten(-1, FEATURE_SHAPE)
        for conv in self.decoder_convs[:-1]:
            hidden = F.relu(conv(hidden))
        return self.decoder_convs[-1](hidden)

    def forward(self, images: torch.Tensor, noise: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(μ, log σ², z = μ + σ ⊙ noise, the logits decoded from z)."""
        mean, log_var = self.encode(images)
        codes = reparameterise(mean, log_var, noise)
        return mean, log_var, codes, self.decode(codes)


def glorot_initialise(module: nn.Module) -> nn.Module:
    """TensorFlow's default initialisation of dense and convolutional layers: Glorot-uniform kernels, zero biases
    (fan_in + fan_out counts the kernel's receptive field, as TensorFlow does, for plain and transposed convs)."""
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
    return module


def seeded(seed: int, build):
    """`build()` with the global generator seeded by `seed` alone, leaving the global random state as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        return build()


def build_solution(seed: int, num_channels: int, num_latent: int, architecture: str = "paper") -> ConvVAE:
    """A solution whose initial weights come from `seed` alone (on the CPU; move it after)."""
    def build():
        network = ConvVAE(num_channels, num_latent, architecture)
        return glorot_initialise(network) if architecture == "dlib_conv" else network
    return seeded(seed, build)


class StackedConvVAE(nn.Module):
    """S independent `ConvVAE`s trained as one computation: grouped convolutions and batched matmuls.
    Images (S, B, C, 64, 64); every output has leading (S, B). Parameters are zero until loaded: build
    with `from_seeds` or `from_states`."""

    def __init__(self, num_solutions: int, num_channels: int, num_latent: int, architecture: str = "paper"):
        super().__init__()
        check_architecture(architecture)
        self.num_solutions, self.num_channels, self.num_latent = num_solutions, num_channels, num_latent
        self.architecture = architecture
        self.encoder_convs = nn.ModuleList(
            StackedConv2d(num_solutions, c_in, c_out, kernel, stride=2, padding=padding)
            for c_in, c_out, kernel, padding in _encoder_conv_shapes(num_channels, architecture))
        self.encoder_hidden = StackedLinear(num_solutions, FLAT_FEATURES, HIDDEN_UNITS)
        self.mean_head = StackedLinear(num_solutions, HIDDEN_UNITS, num_latent)
        self.log_var_head = StackedLinear(num_solutions, HIDDEN_UNITS, num_latent)
        self.decoder_hidden = StackedLinear(num_solutions, num_latent, HIDDEN_UNITS)
        self.decoder_features = StackedLinear(num_solutions, HIDDEN_UNITS, FLAT_FEATURES)
        self.decoder_convs = nn.ModuleList(StackedConvTranspose2d(num_solutions, c_in, c_out, 4, stride=2, padding=1)
                                           for c_in, c_out in _decoder_conv_shapes(num_channels))

    @classmethod
    def from_states(cls, states: Sequence[Mapping[str, torch.Tensor]], num_channels: int, num_latent: int,
                    architecture: str = "paper") -> StackedConvVAE:
        """The stack of the given `ConvVAE` state dicts, in order (on their device)."""
        stacked = cls(len(states), num_channels, num_latent, architecture)
        stacked.load_state_dict(stack_states([{name: state[name] for name in stacked.state_dict()}
                                              for state in states]))
        return stacked.to(next(iter(states[0].values())).device)

    @classmethod
    def from_seeds(cls, seeds: Sequence[int], num_channels: int, num_latent: int,
                   architecture: str = "paper") -> StackedConvVAE:
        """Solution s starts exactly as `build_solution(seeds[s], ...)` does."""
        return cls.from_states([build_solution(seed, num_channels, num_latent, architecture).state_dict()
                                for seed in seeds], num_channels, num_latent, architecture)

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        num_solutions, batch_size = images.shape[:2]
        hidden = pack_channels(images)
        for conv in self.encoder_convs:
            hidden = F.relu(conv(hidden))
        hidden = hidden.reshape(batch_size, num_solutions, FLAT_FEATURES).transpose(0, 1)
        hidden = F.relu(self.encoder_hidden(hidden))
        return self.mean_head(hidden), self.log_var_head(hidden)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        num_solutions = codes.shape[0]
        hidden = F.relu(self.decoder_features(F.relu(self.decoder_hidden(codes))))
        hidden = pack_channels(hidden.unflatten(-1, FEATURE_SHAPE))
        for conv in self.decoder_convs[:-1]:
            hidden = F.relu(conv(hidden))
        return unpack_channels(self.decoder_convs[-1](hidden), num_solutions)

    def forward(self, images: torch.Tensor, noise: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(μ, log σ², z = μ + σ ⊙ noise, the logits decoded from z), each (S, B, ...)."""
        mean, log_var = self.encode(images)
        codes = reparameterise(mean, log_var, noise)
        return mean, log_var, codes, self.decode(codes)
