"""The batched-matmul stack that the stacking benchmark races against the grouped-convolution stack: its lowered
convolutions against PyTorch's, and the whole stack against `StackedConvVAE` on the same weights."""
from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from dlbench_deep_vae import networks
from dlbench_deep_vae.losses import vae_terms
from dlbench_deep_vae.matmul_stack import MatmulStack, matmul_conv2d, matmul_conv_transpose2d

# Float32 sums of the same products in another order: observed ~1e-5 on outputs of order 10 (~8 terms of order 1).
TOLERANCE = 1e-4


@pytest.mark.parametrize("kernel, stride, padding", [(4, 2, 1), (2, 2, 0), (3, 1, 1), (3, (2, 1), (0, 1))])
def test_lowered_convolutions_equal_pytorchs(kernel, stride, padding):
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(3, 5, 12, 10, generator=generator)
    weight, bias = torch.randn(7, 5, kernel, kernel, generator=generator), torch.randn(7, generator=generator)
    expected = F.conv2d(images, weight, bias, stride, padding)
    assert torch.allclose(matmul_conv2d(images, weight, bias, stride, padding), expected, atol=TOLERANCE)
    transposed = torch.randn(5, 7, kernel, kernel, generator=generator)
    expected = F.conv_transpose2d(images, transposed, bias, stride, padding)
    assert torch.allclose(matmul_conv_transpose2d(images, transposed, bias, stride, padding), expected,
                          atol=TOLERANCE)


def test_lowered_convolutions_refuse_what_they_do_not_compute():
    with pytest.raises(ValueError, match="groups=2"):
        matmul_conv2d(torch.zeros(1, 4, 8, 8), torch.zeros(4, 2, 3, 3), groups=2)


def test_the_matmul_stack_computes_the_grouped_stack_and_its_gradients():
    seeds, num_channels = [3, 8], 3
    generator = torch.Generator().manual_seed(1)
    images = torch.rand(2, 4, num_channels, 64, 64, generator=generator)
    noise = torch.randn(2, 4, 10, generator=generator)
    grouped = networks.StackedConvVAE.from_seeds(seeds, num_channels, 10)
    matmul = MatmulStack([networks.build_solution(seed, num_channels, 10) for seed in seeds])
    expected, actual = grouped(images, noise), matmul(images, noise)
    for value, reference in zip(actual, expected):
        assert torch.allclose(value, reference, atol=TOLERANCE)
    for mean, log_var, _, logits in (expected, actual):
        vae_terms(images, mean, log_var, logits)["recon"].sum().backward()
    for name, parameter in grouped.named_parameters():
        assert torch.allclose(matmul.parameters[name].grad, parameter.grad, rtol=1e-4, atol=TOLERANCE), name
