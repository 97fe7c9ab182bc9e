"""The stacked training engine on a small convolutional VAE and the dSprites stand-in: a solution trained in a stack
is the solution trained alone, resume is bit-identical, a diverged solution is frozen alone, data order per seed."""
from __future__ import annotations

import pytest
import torch
from engine_helpers import interrupt_at_save

from dlbench import FitContext, FitInterrupted, RecordError, create_dataset
from dlbench.training import TrainingPlan, train_stack
from dlbench.training.data import ShuffledBatches
from dlbench.training.memory import bytes_per_solution, choose_stack_width
from dlbench_deep_vae.models.beta_vae import BetaVAE
from dlbench_deep_vae.problem import VAEProblem

SMALL_GRID = (1, 3, 2, 4, 6, 6)  # 864 images


@pytest.fixture(scope="module")
def dataset():
    return create_dataset("dsprites", source="procedural", factor_sizes=SMALL_GRID)


def problem(num: int = 2, betas=(1.0, 8.0), init_seeds=None) -> VAEProblem:
    return VAEProblem(BetaVAE(), {"beta": torch.tensor(betas[:num])}, init_seeds or list(range(num)), 1, 4, "paper",
                      "bernoulli")


def plan(name: str, steps: int, width: int, seeds=(11, 12), **options) -> TrainingPlan:
    return TrainingPlan(name, tuple(seeds), steps, batch_size=16, log_every=options.pop("log_every", 50),
                        checkpoint_every=options.pop("checkpoint_every", 10**6), tail_steps=10, stack_width=width,
                        **options)


def context(path, **options) -> FitContext:
    return FitContext("cpu", 0, path, progress=False, **options)


def test_a_solution_trained_in_a_stack_is_the_solution_trained_alone(dataset, tmp_path):
    stacked = train_stack(problem(), plan("stacked", 200, width=2), dataset, context(tmp_path / "stack"))
    for index, seed in enumerate((11, 12)):
        alone = train_stack(problem(1, betas=((1.0, 8.0)[index],), init_seeds=[index]),
                            plan("alone", 200, width=1, seeds=(seed,)), dataset, context(tmp_path / f"alone{index}"))
        for name, value in alone.parameters.items():
            # Grouped and single convolutions round differently, and Adam's normalised step turns a rounding-size
            # gradient into a full step of size lr = 1e-4 now and then: after 200 steps no weight is more than five
            # such steps apart (measured: 2.1e-4), and on average they agree to rounding (measured: 6e-7).
            gap = (stacked.parameters[name][index] - value[0]).abs()
            assert gap.max() <= 5e-4 and gap.mean() <= 2e-6, (name, gap.max().item(), gap.mean().item())
    assert stacked.stack_width == 2


def test_a_few_hundred_steps_lower_the_loss(dataset, tmp_path):
    fit_context = context(tmp_path)
    train_stack(problem(1), plan("learn", 300, width=1, seeds=(3,)), dataset, fit_context)
    totals = [point["total"][0] for point in fit_context.history]
    assert len(totals) == 6 and totals[-1] < 0.8 * totals[0], totals


def test_an_interrupted_stage_resumes_bit_for_bit(dataset, tmp_path):
    reference = train_stack(problem(), plan("stage", 60, width=1, checkpoint_every=20), dataset,
                            context(tmp_path / "reference"))
    with pytest.raises(FitInterrupted):  # after the layout's, then stack0's at steps 20 and 40
        train_stack(problem(), plan("stage", 60, width=1, checkpoint_every=20), dataset,
                    context(tmp_path / "resumed", after_checkpoint=interrupt_at_save(3)))
    resumed_context = context(tmp_path / "resumed")
    resumed = train_stack(problem(), plan("stage", 60, width=1, checkpoint_every=20), dataset, resumed_context)
    assert resumed_context.resumed
    for name, value in reference.parameters.items():
        assert torch.equal(resumed.parameters[name], value), name
    for name, value in reference.tail_means.items():
        assert torch.equal(resumed.tail_means[name], value), name


class DivergesAt(VAEProblem):
    """Solution 1's loss turns NaN from a given step on: a constant NaN added to it, or (through_gradient) one
    multiplying its parameters, so that its gradient is NaN too, as when a network itself diverges."""

    def __init__(self, step: int, through_gradient: bool = False):
        super().__init__(BetaVAE(), {"beta": torch.tensor([1.0, 8.0])}, [0, 1], 1, 4, "paper", "bernoulli")
        self.nan_from, self.calls, self.through_gradient = step, 0, through_gradient

    def loss_terms(self, network, batch):
        terms = super().loss_terms(network, batch)
        if self.calls >= self.nan_from and 1 in batch.solutions:
            position = list(batch.solutions).index(1)
            poison = torch.zeros_like(terms["total"])
            poison[position] = float("nan")
            if self.through_gradient:
                poison = poison * sum(p.sum(dim=tuple(range(1, p.ndim))) for p in network.parameters())
            terms = {**terms, "total": terms["total"] + poison}
        self.calls += 1
        return terms


@pytest.mark.parametrize("through_gradient", [False, True], ids=["nan_loss", "nan_gradient"])
def test_a_nan_in_one_solution_freezes_it_and_leaves_the_others_untouched(dataset, tmp_path, through_gradient):
    outcome = train_stack(DivergesAt(30, through_gradient), plan("nan", 80, width=2), dataset,
                          context(tmp_path / "nan"))
    healthy = train_stack(problem(), plan("nan", 80, width=2), dataset, context(tmp_path / "healthy"))
    until = train_stack(problem(), plan("nan", 30, width=2), dataset, context(tmp_path / "until"))
    assert outcome.frozen_at.tolist() == [-1, 30]
    for name in outcome.parameters:
        assert torch.equal(outcome.parameters[name][0], healthy.parameters[name][0]), name
        assert torch.equal(outcome.parameters[name][1], until.parameters[name][1]), name
    assert torch.isfinite(outcome.tail_means["recon"][0]) and torch.isnan(outcome.tail_means["total"][1])


def test_a_frozen_solution_stays_frozen_across_a_resume(dataset, tmp_path):
    uninterrupted = train_stack(DivergesAt(30, through_gradient=True), plan("nan", 80, width=2, checkpoint_every=20),
                                dataset, context(tmp_path / "whole"))
    with pytest.raises(FitInterrupted):  # after the layout's, then the stack's at steps 20 and 40
        train_stack(DivergesAt(30, through_gradient=True), plan("nan", 80, width=2, checkpoint_every=20), dataset,
                    context(tmp_path / "resumed", after_checkpoint=interrupt_at_save(3)))
    # The resumed problem's loss is finite again (its NaN starts 30 calls after the resume, at step 70): the
    # solution frozen at step 30 stays frozen because the checkpoint says so, not because its loss is NaN.
    resumed = train_stack(DivergesAt(30, through_gradient=True), plan("nan", 80, width=2, checkpoint_every=20),
                          dataset, context(tmp_path / "resumed"))
    assert resumed.frozen_at.tolist() == uninterrupted.frozen_at.tolist() == [-1, 30]
    for name, value in uninterrupted.parameters.items():
        assert torch.equal(resumed.parameters[name], value), name


def indices_at(batches: ShuffledBatches, step: int) -> torch.Tensor:
    batches.begin_step(step)
    return batches.current_indices()


def test_each_solution_shuffles_epochs_with_its_own_generator(dataset):
    together = ShuffledBatches(dataset, [5, 6], batch_size=100)
    alone = ShuffledBatches(dataset, [6], batch_size=100)
    steps = together.steps_per_epoch
    seen = torch.cat([indices_at(together, step) for step in range(steps)], dim=1)
    assert torch.equal(seen[1], torch.cat([indices_at(alone, step)[0] for step in range(steps)]))
    assert len(set(seen[0].tolist())) == steps * 100  # an epoch draws without replacement, dropping the rest
    assert not torch.equal(indices_at(together, steps), seen[:, :100])  # the next epoch is a new shuffle
    state = together.state()
    restored = ShuffledBatches(dataset, [5, 6], batch_size=100)
    restored.load_state(state)
    assert torch.equal(indices_at(restored, steps + 1), indices_at(together, steps + 1))


def test_the_width_is_measured_and_one_on_a_cpu(dataset):
    small = plan("w", 10, width=None)
    per_solution = bytes_per_solution(problem(), small, dataset, torch.device("cpu"))
    parameters = sum(p.numel() for p in problem().build([0]).parameters())
    assert per_solution > 16 * parameters  # four float32 copies of the parameters, plus activations
    assert choose_stack_width(problem(), small, dataset, torch.device("cpu")) == 1


def test_batch_larger_than_the_dataset_and_corrupt_checkpoints_are_refused(dataset, tmp_path):
    from dlbench import ConfigError

    with pytest.raises(ConfigError, match="model.batch_size = 1000 is not accepted; expected at most the dataset"):
        train_stack(problem(), TrainingPlan("big", (1, 2), 5, batch_size=1000), dataset, context(tmp_path))
    fit_context = context(tmp_path / "corrupt")
    fit_context.checkpoint_path("c.layout").parent.mkdir(parents=True)
    fit_context.checkpoint_path("c.layout").write_bytes(b"\x80\x04garbage")
    with pytest.raises(RecordError, match="c.layout.pt: not a readable dlbench checkpoint"):
        train_stack(problem(), plan("c", 5, width=1), dataset, fit_context)
    torch.save({"format": "someone.else/1"}, fit_context.checkpoint_path("c.layout"))
    with pytest.raises(RecordError, match="a foreign checkpoint"):
        train_stack(problem(), plan("c", 5, width=1), dataset, fit_context)


def test_history_points_name_their_solutions_and_tensorboard_writes_events(dataset, tmp_path):
    pytest.importorskip("tensorboard")
    fit_context = context(tmp_path / "fit")
    train_stack(problem(), plan("tb", 20, width=2, log_every=10, labels=((1.0, 0.0, 0), (8.0, 0.0, 0)),
                                tensorboard_dir=tmp_path / "tb"), dataset, fit_context)
    assert [point["step"] for point in fit_context.history] == [10, 20]
    assert fit_context.history[0]["solutions"] == [(1.0, 0.0, 0), (8.0, 0.0, 0)]
    assert len(fit_context.history[0]["kl_per_latent"][0]) == 4
    assert list((tmp_path / "tb").rglob("events.out.tfevents.*"))


def test_a_solutions_draws_come_in_blocks_from_its_own_generator_and_resume_mid_block():
    from dlbench.training.noise import NoiseStreams

    def streams(seeds):
        return NoiseStreams([torch.Generator().manual_seed(seed) for seed in seeds], torch.device("cpu"),
                            block_steps=4)

    def draws(noise, steps, start=0):
        out = []
        for step in range(start, start + steps):
            noise.begin_step(step)
            out.append((noise.draw(torch.randn, (2, 3)), noise.draw(torch.rand, (5,))))
        return out

    together, alone = draws(streams([5, 7]), 10), draws(streams([7]), 10)
    for (normal, uniform), (normal_alone, uniform_alone) in zip(together, alone):
        assert torch.equal(normal[1], normal_alone[0]) and torch.equal(uniform[1], uniform_alone[0])
    assert not torch.equal(together[0][0][0], together[1][0][0])  # every step draws anew
    # A checkpoint at step 6 (mid-block) holds the block's starting states; the resumed draws are the same.
    first = streams([5, 7])
    draws(first, 6)
    resumed = streams([5, 7])
    resumed.load_state(first.state())
    for (normal, uniform), (expected_normal, expected_uniform) in zip(draws(resumed, 4, start=6), together[6:]):
        assert torch.equal(normal, expected_normal) and torch.equal(uniform, expected_uniform)


def test_a_protocol_one_problem_is_refused_in_one_line(dataset, tmp_path):
    from dlbench import ConfigError

    class OldProblem:
        def build(self, solutions):
            return problem().build(solutions)

        def loss_terms(self, network, solutions, observations, noise_generators):
            raise AssertionError("never called")

    with pytest.raises(ConfigError, match=r"OldProblem.loss_terms takes \(network, solutions, observations, "
                                          r"noise_generators\); engine protocol 2 calls loss_terms\(network, batch\)"):
        train_stack(OldProblem(), plan("old", 5, width=1), dataset, context(tmp_path))
