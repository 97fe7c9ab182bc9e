"""The plugin API's version, and the check that a built model honours it before any work is done.

A plugin module may declare the API it was written for (`DLBENCH_PLUGIN_API = 2` beside its hooks). A model from a
plugin written for another API, or one whose `fit` has an old signature or that lacks members of the `Model`
protocol, is refused with one line naming the plugin, what is missing or changed, and the README section to read,
instead of a TypeError (or a traceback while its record is written) after the training.
"""
from __future__ import annotations

import inspect

from dlbench.errors import ConfigError

PLUGIN_API = 2
README_SECTION = "README, 'Plugin API versions'"
# What each API version changed, for a plugin written for an older one.
CHANGES = {
    1: "API 2 hands the engine's loss_terms one dlbench.training.StepBatch (observations, step, solutions, noise) "
       "instead of (network, solutions, observations, noise_generators), trains optimiser groups "
       "(TrainingPlan.optimizer_groups replaces learning_rate, adam_betas and adam_eps) and moved derived_seed to "
       "dlbench.training.seeds",
}
MODEL_MEMBERS = ("name", "replicate_axes", "solution_axes", "fit", "representation", "hyperparameters", "state_dict",
                 "load_state_dict")


def check_model(model, registration, plugin_module) -> None:
    """Refuse (ConfigError, one line) a model its plugin built for another API or without the Model protocol."""
    who = f"model {registration.name!r} (plugin {registration.plugin} {registration.version})"
    declared = getattr(plugin_module, "DLBENCH_PLUGIN_API", None)
    if declared is not None and declared != PLUGIN_API:
        change = CHANGES.get(declared, "this dlbench is older than the plugin; upgrade dlbench")
        raise ConfigError(f"{who} was written for dlbench plugin API {declared}, and this dlbench has API "
                          f"{PLUGIN_API}: {change}; see the {README_SECTION}")
    missing = [member for member in MODEL_MEMBERS if not _has_member(model, member)]
    if missing:
        raise ConfigError(f"{who} lacks {', '.join(missing)} of the dlbench.interfaces.Model protocol (API "
                          f"{PLUGIN_API}); see the {README_SECTION}")
    parameters = inspect.signature(model.fit).parameters.values()
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required_keywords = [p.name for p in parameters if p.kind is p.KEYWORD_ONLY and p.default is p.empty]
    if len(positional) != 2 or required_keywords:
        found = ", ".join(str(p) for p in inspect.signature(model.fit).parameters.values())
        raise ConfigError(f"{who} has fit({found}); API {PLUGIN_API} calls fit(dataset, context) with a "
                          f"dlbench.FitContext (device, seed, workdir, checkpoints) as context; see the "
                          f"{README_SECTION}")


def _has_member(model, member: str) -> bool:
    """Whether the model has `member`, found without running it: a property such as solution_axes may build
    something as large as the request (list(range(num_starts))) before the model's own memory check refuses it."""
    try:
        inspect.getattr_static(model, member)
    except AttributeError:
        return False
    return True
