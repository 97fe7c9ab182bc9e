from __future__ import annotations

import pytest
import torch

from dlbench.training import StepBatch
from dlbench.training.layers import solution_state
from dlbench.training.noise import NoiseStreams
from dlbench_deep_vae import networks
from dlbench_deep_vae.losses import vae_terms

NUM_LATENT = 10
# Float32 forward of the same weights through grouped kernels instead of plain ones: agreement observed
# ~3e-8 on outputs of order 0.1.
FORWARD_TOLERANCE = 1e-5


def _inputs(num_solutions: int, batch_size: int, num_channels: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(num_solutions, batch_size, num_channels, 64, 64, generator=generator)
    noise = torch.randn(num_solutions, batch_size, NUM_LATENT, generator=generator)
    return images, noise


@pytest.mark.parametrize("architecture", networks.ARCHITECTURES)
@pytest.mark.parametrize("num_channels", [1, 3])
def test_shapes_of_one_solution_and_of_a_stack(architecture, num_channels):
    solution = networks.build_solution(0, num_channels, NUM_LATENT, architecture)
    images, noise = _inputs(2, 3, num_channels)
    hidden = images[0]
    for conv in solution.encoder_convs:
        hidden = conv(hidden)
    assert hidden.shape == (3, *networks.FEATURE_SHAPE)
    mean, log_var, codes, logits = solution(images[0], noise[0])
    assert mean.shape == log_var.shape == codes.shape == (3, NUM_LATENT)
    assert logits.shape == (3, num_channels, 64, 64)

    stack = networks.StackedConvVAE.from_seeds([0, 1], num_channels, NUM_LATENT, architecture)
    mean, log_var, codes, logits = stack(images, noise)
    assert mean.shape == log_var.shape == codes.shape == (2, 3, NUM_LATENT)
    assert logits.shape == (2, 3, num_channels, 64, 64)


def test_architectures_differ_only_in_the_last_two_encoder_kernels():
    paper = networks.build_solution(0, 1, NUM_LATENT, "paper")
    dlib = networks.build_solution(0, 1, NUM_LATENT, "dlib_conv")
    assert [conv.kernel_size for conv in paper.encoder_convs] == [(4, 4)] * 4
    assert [conv.kernel_size for conv in dlib.encoder_convs] == [(4, 4), (4, 4), (2, 2), (2, 2)]
    assert {name: p.shape for name, p in paper.named_parameters() if not name.startswith("encoder_convs")} == \
        {name: p.shape for name, p in dlib.named_parameters() if not name.startswith("encoder_convs")}


def test_dlib_conv_is_initialised_as_tensorflow_initialises_its_layers():
    """Glorot-uniform kernels, U(±√(6 / (fan_in + fan_out))) with the receptive field counted, and zero biases; the
    paper's architecture keeps PyTorch's defaults (non-zero biases)."""
    solution = networks.build_solution(0, 3, NUM_LATENT, "dlib_conv")
    for layer in solution.modules():
        if isinstance(layer, (torch.nn.Linear, torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            weight = layer.weight
            receptive = weight[0, 0].numel()
            fans = (weight.shape[0] + weight.shape[1]) * receptive
            limit = (6 / fans) ** 0.5
            assert torch.all(layer.bias == 0)
            assert weight.abs().max() <= limit
            # A uniform on ±limit has standard deviation limit/√3 (here within 10 % for ≥ 2,000 weights).
            assert abs(weight.std().item() / (limit / 3 ** 0.5) - 1) < 0.1, (layer, weight.numel())
    paper = networks.build_solution(0, 3, NUM_LATENT, "paper")
    assert paper.mean_head.bias.abs().sum() > 0


@pytest.mark.parametrize("build", [lambda name: networks.ConvVAE(1, NUM_LATENT, name),
                                   lambda name: networks.StackedConvVAE(2, 1, NUM_LATENT, name)])
def test_unknown_architecture_is_refused_naming_the_accepted_ones(build):
    with pytest.raises(ValueError, match="'paper', 'dlib_conv'") as error:
        build("resnet")
    assert "'resnet'" in str(error.value)


def test_initialisation_comes_from_the_seed_alone():
    torch.manual_seed(123)
    first = networks.build_solution(7, 3, NUM_LATENT).state_dict()
    torch.manual_seed(456)
    torch.rand(1000)
    second = networks.build_solution(7, 3, NUM_LATENT).state_dict()
    other_seed = networks.build_solution(8, 3, NUM_LATENT).state_dict()
    for name in first:
        assert torch.equal(first[name], second[name]), name
        assert not torch.equal(first[name], other_seed[name]), name


def test_building_leaves_the_global_random_state_alone():
    torch.manual_seed(5)
    networks.build_solution(0, 1, NUM_LATENT)
    after_building = torch.rand(4)
    torch.manual_seed(5)
    assert torch.equal(after_building, torch.rand(4))


def test_a_stack_starts_from_each_seeds_solution_exactly():
    seeds = [3, 0, 9]
    stack = networks.StackedConvVAE.from_seeds(seeds, 1, NUM_LATENT)
    for index, seed in enumerate(seeds):
        alone = networks.build_solution(seed, 1, NUM_LATENT).state_dict()
        state = solution_state(stack, index)
        assert state.keys() == alone.keys()
        assert all(torch.equal(state[name], alone[name]) for name in alone)


@pytest.mark.parametrize("architecture", networks.ARCHITECTURES)
@pytest.mark.parametrize("num_channels", [1, 3])
def test_stacked_forward_equals_each_solutions_own_forward(architecture, num_channels):
    seeds = [0, 1, 2]
    stack = networks.StackedConvVAE.from_seeds(seeds, num_channels, NUM_LATENT, architecture)
    images, noise = _inputs(len(seeds), 4, num_channels)
    stacked_outputs = stack(images, noise)
    for index, seed in enumerate(seeds):
        solution = networks.build_solution(seed, num_channels, NUM_LATENT, architecture)
        for stacked, alone in zip(stacked_outputs, solution(images[index], noise[index])):
            torch.testing.assert_close(stacked[index], alone, rtol=0, atol=FORWARD_TOLERANCE)


def test_solution_state_round_trip():
    stack = networks.StackedConvVAE.from_seeds([4, 5], 3, NUM_LATENT, "dlib_conv")
    states = [solution_state(stack, index) for index in range(2)]
    solution = networks.ConvVAE(3, NUM_LATENT, "dlib_conv")
    solution.load_state_dict(states[1], strict=True)
    rebuilt = networks.StackedConvVAE.from_states(states, 3, NUM_LATENT, "dlib_conv")
    original = stack.state_dict()
    assert all(torch.equal(tensor, original[name]) for name, tensor in rebuilt.state_dict().items())
    first_name = next(iter(original))
    before = states[0][first_name].clone()
    with torch.no_grad():
        original[first_name].add_(1.0)
    assert torch.equal(states[0][first_name], before), "solution_state must copy, not alias, the stack's tensors"


def test_a_solutions_noise_does_not_depend_on_its_stack():
    def generator(seed):
        return torch.Generator().manual_seed(seed)

    def noise(seeds):
        streams = NoiseStreams([generator(seed) for seed in seeds], torch.device("cpu"))
        streams.begin_step(0)
        return StepBatch(torch.zeros(len(seeds), 1), torch.tensor(0), range(len(seeds)), streams).normal(4, NUM_LATENT)

    in_pair, alone = noise([5, 7]), noise([7])
    assert in_pair.shape == (2, 4, NUM_LATENT)
    assert torch.equal(in_pair[1], alone[0])
    assert not torch.equal(in_pair[0], in_pair[1])


def test_reparameterise_uses_half_log_variance():
    mean, log_var, noise = torch.tensor([1.0, -2.0]), torch.tensor([0.0, 2.0 * 0.5]), torch.tensor([2.0, 3.0])
    expected = torch.tensor([1.0 + 1.0 * 2.0, -2.0 + torch.e ** 0.5 * 3.0])
    torch.testing.assert_close(networks.reparameterise(mean, log_var, noise), expected)


def test_a_solution_trains_the_same_in_any_stack():
    """Two Adam steps of seed 1 inside the stack [0, 1] and alone in the stack [1]."""
    def train(seeds):
        stack = networks.StackedConvVAE.from_seeds(seeds, 1, NUM_LATENT)
        optimizer = torch.optim.Adam(stack.parameters(), lr=1e-4)
        generators = [torch.Generator().manual_seed(seed) for seed in seeds]
        for _ in range(2):
            images = torch.stack([torch.rand(4, 1, 64, 64, generator=g) for g in generators])
            noise = torch.stack([torch.randn(4, NUM_LATENT, generator=g) for g in generators])
            mean, log_var, _, logits = stack(images, noise)
            terms = vae_terms(images, mean, log_var, logits)
            optimizer.zero_grad()
            (terms["recon"] + 4.0 * terms["kl"] + 2.0 * terms["l2"]).sum().backward()
            optimizer.step()
        return solution_state(stack, len(seeds) - 1)

    in_pair, alone = train([0, 1]), train([1])
    # The weights move ~2e-4 in two steps; the two stacks' float32 reductions differ by ~6e-7.
    for name in alone:
        torch.testing.assert_close(in_pair[name], alone[name], rtol=0, atol=1e-5)
