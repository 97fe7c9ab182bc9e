"""Conformance checks that model plugin authors run in their own test suites.

    from dlbench.testing import check_model

    def test_my_vae_conforms(tmp_path):
        check_model(lambda: MyVAE(beta=4.0, training_steps=20), my_small_dataset, tmp_path)

Each check raises AssertionError with a message that says what the contract wanted.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import torch

from dlbench.interfaces import GroundTruthDataset, Model
from dlbench.records import load_state, save_state, to_jsonable


def check_model(factory: Callable[[], Model], dataset: GroundTruthDataset, workdir: Path, *,
                seed: int = 0, num_observations: int = 16) -> Model:
    """Fit a model from `factory` on `dataset` and check the Model contract: the protocol's
    members, a finite representation of shape (*solution_shape, num, d) on the dataset's device,
    JSON-ready hyperparameters, and a state that round-trips through state.npz to the same
    representation. Returns the fitted model."""
    model = factory()
    assert isinstance(model, Model), (
        f"{type(model).__name__} lacks members of dlbench.interfaces.Model: it needs name, "
        "solution_axes, fit, representation, hyperparameters, state_dict, load_state_dict")
    device = dataset.device
    model.fit(dataset, device=device, seed=seed, workdir=Path(workdir), progress=False)

    generator = torch.Generator(device=device).manual_seed(seed)
    _, observations = dataset.sample(num_observations, generator)
    codes = model.representation(observations)
    solution_shape = tuple(len(labels) for labels in model.solution_axes.values())
    assert codes.shape[:-1] == (*solution_shape, num_observations), (
        f"representation has shape {tuple(codes.shape)}; expected "
        f"{(*solution_shape, num_observations)} + (d,) for solution axes "
        f"{list(model.solution_axes)} and {num_observations} observations")
    assert codes.device.type == device.type, (
        f"representation is on {codes.device}, the dataset on {device}")
    assert torch.isfinite(codes).all(), "representation has NaN or infinite codes"

    hyperparameters = model.hyperparameters()
    assert isinstance(hyperparameters, dict) and hyperparameters, \
        "hyperparameters() must return a non-empty dict"
    json.dumps(to_jsonable(hyperparameters), allow_nan=False)

    state_file = Path(workdir) / "conformance_state.npz"
    save_state(state_file, model.state_dict())
    restored = factory()
    restored.load_state_dict(load_state(state_file, device))
    assert torch.equal(restored.representation(observations), codes), (
        "a model restored from its state_dict gives a different representation")
    return model
