"""A registered, gin-configurable factory for each objective: its axes and settings, the seeds, and the settings
every deep model shares, each validated with a one-line error before any work."""
from __future__ import annotations

import inspect
import math
from typing import Any, Callable

from dlbench import check_binding, check_number
from dlbench_deep_vae import losses, networks
from dlbench_deep_vae.objective import Objective

# (name, default, description) of the parameters every deep model takes after its own.
COMMON = (
    ("seeds", tuple(range(10)), "the seeds grid: each seed's initial weights, data order and noise."),
    ("architecture", None, '"paper" (four k4 convs) or "dlib_conv" (disentanglement_lib\'s kernels 4, 4, 2, 2, '
                           'initialised as TensorFlow does).'),
    ("likelihood", "bernoulli", '"bernoulli" (binary cross-entropy on the logits) or "l2" (squared error).'),
    ("learning_rate", 1e-4, "Adam's learning rate (betas 0.9, 0.999; eps 1e-8)."),
    ("log_every", 500, "steps between the loss history's points (means over the steps since the last)."),
    ("checkpoint_every", 2000, "steps between resume checkpoints."),
    ("stack_width", None, "solutions trained as one stack (default: the engine's choice for the device)."),
    ("cache_stages", True, "reuse and store trained solutions in the shared stage cache ($DLBENCH_CACHE_DIR)."),
)
CONTINUATION = ("beta_steps", None, "steps of the stage this model continues (default 150,000); "
                "model.training_steps sets its own stage.")


def _parameters(objective: type[Objective]) -> list[tuple[str, Any, str]]:
    rows = [(axis.parameter, axis.default, axis.doc) for axis in objective.axes.values()]
    rows += [(name, setting.default, setting.doc) for name, setting in objective.settings.items()]
    rows += [(name, objective.default_architecture if name == "architecture" else default, doc)
             for name, default, doc in COMMON]
    return rows + ([CONTINUATION] if objective.continues else [])


def model_factory(objective: type[Objective], summary: str) -> Callable:
    """The factory `objective.model(**parameters)` registers: its signature and docstring list every parameter (what
    gin binds and `dlbench list configurables` shows)."""
    from dlbench_deep_vae.model import DeepVAE

    rows = _parameters(objective)
    signature = inspect.Signature([inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)
                                   for name, default, _ in rows])

    def factory(**parameters):
        bound = signature.bind(**parameters)
        bound.apply_defaults()
        return DeepVAE(objective, **_validated(objective, bound.arguments))

    factory.__name__ = factory.__qualname__ = objective.model
    factory.__signature__ = signature
    factory.__doc__ = summary + "\n\nArgs:\n" + "\n".join(f"    {name}: {doc}" for name, _, doc in rows)
    return factory


def _numbers(values, binding: str, accepted: str, valid, integer: bool = False) -> list:
    ok = isinstance(values, (list, tuple)) and len(values) > 0 and len(set(values)) == len(values) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and valid(v)
        and (not integer or isinstance(v, int)) for v in values)
    check_binding(ok, binding, values, accepted)
    return [int(v) if integer else float(v) for v in values]


def _validated(objective: type[Objective], arguments: dict[str, Any]) -> dict[str, Any]:
    """The factory's arguments checked and split into the grid, the objective's settings and the training's."""
    name = objective.model
    axes = {axis_name: _numbers(arguments.pop(axis.parameter), f"{name}.{axis.parameter}", axis.accepted, axis.valid)
            for axis_name, axis in objective.axes.items()}
    axes["seed"] = _numbers(arguments.pop("seeds"), f"{name}.seeds", "a non-empty list of distinct integers >= 0",
                            lambda v: 0 <= v < 2**63, integer=True)
    settings = {}
    for setting_name, setting in objective.settings.items():
        value = arguments.pop(setting_name)
        check_binding(isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                      and setting.valid(value), f"{name}.{setting_name}", value, setting.accepted)
        settings[setting_name] = float(value)
    check_binding(arguments["architecture"] in networks.ARCHITECTURES, f"{name}.architecture",
                  arguments["architecture"], " or ".join(map(repr, networks.ARCHITECTURES)))
    check_binding(arguments["likelihood"] in losses.LIKELIHOODS, f"{name}.likelihood", arguments["likelihood"],
                  " or ".join(map(repr, losses.LIKELIHOODS)))
    check_number(f"{name}.learning_rate", arguments["learning_rate"], above=0)
    for binding in ("log_every", "checkpoint_every"):
        check_number(f"{name}.{binding}", arguments[binding], minimum=1, integer=True)
    for binding in ("beta_steps", "stack_width"):
        if arguments.get(binding) is not None:
            check_number(f"{name}.{binding}", arguments[binding], minimum=1, integer=True)
    check_binding(isinstance(arguments["cache_stages"], bool), f"{name}.cache_stages", arguments["cache_stages"],
                  "True or False")
    return {"axes": axes, "objective_settings": settings, **arguments}
