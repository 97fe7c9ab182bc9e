"""The plugin contract check: members of the Model protocol are looked for, never run, before any work."""
from __future__ import annotations

import types

import pytest

from dlbench.contract import check_model
from dlbench.errors import ConfigError
from dlbench.plugins import Registration


class Model:
    name = "probe"
    replicate_axes = ("start",)

    def __init__(self):
        self.state_dict = lambda: {}  # an instance attribute counts as much as a method

    @property
    def solution_axes(self):
        raise AssertionError("the contract check ran solution_axes (it may be as large as the request)")

    def fit(self, dataset, context):
        pass

    def representation(self, observations):
        pass

    def hyperparameters(self):
        return {}

    def load_state_dict(self, state):
        pass


REGISTRATION = Registration("probe", "models", Model, "probe_plugin", Model)
PLUGIN = types.ModuleType("probe_plugin")


def test_members_are_found_without_running_them():
    check_model(Model(), REGISTRATION, PLUGIN)


def test_a_missing_member_is_named():
    model = Model()
    del model.state_dict
    with pytest.raises(ConfigError, match="lacks state_dict of the dlbench.interfaces.Model protocol"):
        check_model(model, REGISTRATION, PLUGIN)
