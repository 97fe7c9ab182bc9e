"""Gin configuration: the core's own configurables, stacked parsing, one-line errors, and the split of a
config into what determines the fitted model and what only sets up its evaluation."""
from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import tokenize
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import gin
from dlbench.errors import ConfigError, RecordError, not_accepted
from dlbench.plugins import get_plugins
from gin import config_parser

# gin appends "(file.gin, line N)" to syntax errors; the location is printed in front instead.
_GIN_SYNTAX_SUFFIX = re.compile(r" [(][^)]*line \d+[)]$")
_GIN_LOCATION = re.compile(r'In file "(?P<file>[^"]+)", line (?P<line>\d+)')
# The core's configurables that set up the evaluation only: changing them never refits a model.
EVALUATION_CONFIGURABLE = "evaluation"
SEED_LIMIT = 2**63 - 1  # torch seeds are int64


@dataclass(frozen=True)
class TrainingSettings:
    """The core's settings for models trained by SGD (disentanglement_lib's names); None: the model's default."""
    batch_size: int | None = None
    training_steps: int | None = None
    num_latent: int | None = None
    init_from: str | None = None
    tensorboard: bool = False
    precision: str = "float32"
    compile: bool = False
    cuda_graphs: bool = False

    def given(self) -> dict[str, Any]:
        """The settings the user set, as bindings, for a model that has no use for them to refuse."""
        bindings = {"model.batch_size": self.batch_size, "model.training_steps": self.training_steps,
                    "encoder.num_latent": self.num_latent, "model.init_from": self.init_from,
                    "model.tensorboard": self.tensorboard or None,
                    "training.precision": None if self.precision == "float32" else self.precision,
                    "training.compile": self.compile or None, "training.cuda_graphs": self.cuda_graphs or None}
        return {binding: value for binding, value in bindings.items() if value is not None}


@dataclass(frozen=True)
class Experiment:
    """What the core itself reads from the config: which dataset, model and metrics to use."""
    dataset_name: str
    dataset_source: str
    model_name: str
    random_seed: int
    metric_names: tuple[str, ...]
    evaluation_seed: int
    training: TrainingSettings = TrainingSettings()


@gin.configurable("dataset")
def dataset_choice(name=gin.REQUIRED, source="auto"):
    """The ground-truth dataset of a run.

    Args:
        name: the registered dataset name (`dlbench list datasets`).
        source: "auto" (the official file when found, else the stand-in), "official", "procedural" or "synthetic".
    """
    return name, source


@gin.configurable("model")
def model_choice(name=gin.REQUIRED, random_seed=0, batch_size=None, training_steps=None, init_from=None,
                 tensorboard=False):
    """The model of a run, and the training settings of models trained by SGD.

    Args:
        name: the registered model name (`dlbench list models`).
        random_seed: the seed of the fit (`--seed` overrides it); part of the run's identity.
        batch_size: observations per solution and step (default: the model's).
        training_steps: optimiser steps of the model's (last) training stage (default: the model's).
        init_from: a finished run directory whose trained weights the model starts from.
        tensorboard: also write TensorBoard event files of the training (needs the tensorboard package).
    """
    return name, random_seed, batch_size, training_steps, init_from, tensorboard


@gin.configurable("encoder")
def encoder_choice(num_latent=None):
    """The representation of models with an encoder.

    Args:
        num_latent: the latent (code) size d (default: the model's).
    """
    return num_latent


@gin.configurable("evaluation")
def evaluation_choice(metrics=(), random_seed=0):
    """The sample-based metrics scored after the fit.

    Args:
        metrics: registered metric names (`dlbench list metrics`); changing them re-scores, never refits.
        random_seed: the seed of the metrics' sampling.
    """
    return metrics, random_seed


PRECISIONS = ("float32", "bf16")


@gin.configurable("training")
def training_choice(precision="float32", compile=False, cuda_graphs=False):
    """How the engine computes a step of models trained by SGD (each changes results only to rounding: measured and
    stated by `dlbench bench deep_vae_modes`).

    Args:
        precision: "float32" (the papers' numbers) or "bf16" (autocast of the forward pass to bfloat16; on GPUs and
            CPUs with bfloat16 instructions).
        compile: compile the network's forward and backward with torch.compile (minutes of compiling first).
        cuda_graphs: capture a training step in a CUDA graph and replay it (CUDA devices; not with compile).
    """
    return precision, compile, cuda_graphs


CORE_CONFIGURABLES = {"dataset": dataset_choice, "model": model_choice, "encoder": encoder_choice,
                      "training": training_choice,
                      "evaluation": evaluation_choice}
# Bindings that change how a fit is observed, never what it produces: not part of a run's identity.
OBSERVATION_BINDINGS = frozenset({("model", "tensorboard")})


def check_binding(condition: bool, binding: str, value: Any, accepted: str) -> None:
    """Raise a ConfigError naming the binding, its bad value and what would be accepted."""
    if not condition:
        raise not_accepted(binding, value, accepted)


def is_real(value: Any) -> bool:
    """A finite int or float that is not a bool (1e999 parses as inf, and must be refused before any work)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_number(binding: str, value: Any, *, minimum: float | None = None, above: float | None = None,
                 maximum: float | None = None, integer: bool = False) -> Any:
    """A finite number (an int where `integer`) within the bounds, else a ConfigError that names the binding."""
    bounds = []
    if minimum is not None:
        bounds.append(f">= {minimum:g}")
    if above is not None:
        bounds.append(f"> {above:g}")
    if maximum is not None:
        bounds.append(f"<= {maximum:g}")
    kind = "an integer" if integer else "a finite number"
    expected = f"{kind} {' and '.join(bounds)}".strip()
    ok = is_real(value) and (not integer or isinstance(value, int)) \
        and (minimum is None or value >= minimum) and (above is None or value > above) \
        and (maximum is None or value <= maximum)
    check_binding(ok, binding, value, expected)
    return value


def check_seed(what: str, seed: Any) -> int:
    return check_number(what, seed, minimum=0, maximum=SEED_LIMIT, integer=True)


def one_line(exc: Exception, where: str) -> str:
    message = str(exc).strip().split("\n", 1)[0]
    found = _GIN_LOCATION.search(str(exc))
    if found:
        return f"{found['file']}, line {found['line']}: {message}"
    if isinstance(exc, tokenize.TokenError):  # e.g. a bracket still open at the end of file
        return f"{where}, line {exc.args[1][0]}: {exc.args[0]}"
    if isinstance(exc, SyntaxError) and exc.lineno:
        return f"{where}, line {exc.lineno}: {_GIN_SYNTAX_SUFFIX.sub('', message)}"
    return f"{where}: {message}"


# What gin raises for a config it cannot use: syntax, unknown names, missing includes, failed imports.
_GIN_ERRORS = (ValueError, SyntaxError, tokenize.TokenError, TypeError, KeyError, OSError, ImportError)


@contextmanager
def _quiet_gin():
    """gin logs a missing include at ERROR level before raising; the raised error is reported as one line instead."""
    root = logging.getLogger()
    previous = root.level
    root.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        root.setLevel(previous)


def parse(config_files: Sequence[str | Path], bindings: Sequence[str]) -> None:
    """Parse gin files, then `-p` bindings, in order (later ones override earlier ones)."""
    get_plugins().require_no_conflicts()  # every plugin's configurables are registered before gin parses
    gin.clear_config()
    for config_file in config_files:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} not found; give the path of a .gin file")
        gin.add_config_file_search_path(str(path.parent.resolve()))
        try:
            with _quiet_gin():
                gin.parse_config_file(str(path))
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not a text file ({exc.reason}); give a .gin file") from exc
        except _GIN_ERRORS as exc:
            raise ConfigError(one_line(exc, str(path))) from exc
    parse_bindings(bindings)
    finalize()


def finalize() -> None:
    try:
        gin.finalize()
    except _GIN_ERRORS as exc:
        macro = re.search(r"No bindings specified for '([^'/]+)/gin.macro'", str(exc))
        if macro:
            raise ConfigError(f"%{macro[1]} is used but never defined; define it in a gin file or with -p "
                              f"('{macro[1]} = value')") from exc
        raise ConfigError(one_line(exc, "config")) from exc


def parse_bindings(bindings: Sequence[str]) -> None:
    """Parse `-p` bindings in order, naming the one that fails."""
    for binding in bindings:
        try:
            with _quiet_gin():
                gin.parse_config(binding)
        except _GIN_ERRORS as exc:
            raise ConfigError(one_line(exc, f"binding {binding!r}")) from exc


_MISSING_REQUIRED = re.compile(r"Required bindings for `(?P<name>\w+)` not provided in config: "
                               r"\[(?P<params>[^]]*)\]")
# gin reports a %MACRO that was never defined as a failed call of its `macro` configurable in the macro's scope.
_UNDEFINED_MACRO = re.compile(r"In call to configurable 'macro' .* in scope '(?P<name>[^']+)'")


def call_configured(function: Callable, configurable_name: str, *args, **kwargs):
    """Call a gin configurable, turning gin's failures (a missing required binding, an undefined macro) into a
    ConfigError that names the binding."""
    try:
        return function(*args, **kwargs)
    except RuntimeError as exc:
        missing = _MISSING_REQUIRED.search(str(exc))
        if not missing:
            raise
        params = [p.strip(" '\"") for p in missing["params"].split(",")]
        wanted = ", ".join(f"{configurable_name}.{p}" for p in params)
        raise ConfigError(f"{wanted} must be set, in a gin file or with -p") from exc
    except TypeError as exc:
        macro = _UNDEFINED_MACRO.search(str(exc))
        if not macro:
            raise
        raise ConfigError(f"%{macro['name']} (in a binding of {configurable_name}) is not defined; define it in a "
                          f"gin file or with -p ('{macro['name']} = value')") from exc


def read_experiment() -> Experiment:
    """The core's choices from the parsed config, validated."""
    dataset_name, source = call_configured(dataset_choice, "dataset")
    model_name, random_seed, batch_size, training_steps, init_from, tensorboard = call_configured(model_choice,
                                                                                                "model")
    num_latent = call_configured(encoder_choice, "encoder")
    precision, compile_step, cuda_graphs = call_configured(training_choice, "training")
    check_binding(precision in PRECISIONS, "training.precision", precision, " or ".join(map(repr, PRECISIONS)))
    check_binding(isinstance(compile_step, bool), "training.compile", compile_step, "True or False")
    check_binding(isinstance(cuda_graphs, bool), "training.cuda_graphs", cuda_graphs, "True or False")
    check_binding(not (compile_step and cuda_graphs), "training.cuda_graphs", cuda_graphs,
                  "False while training.compile = True (one of the two)")
    metrics, evaluation_seed = call_configured(evaluation_choice, "evaluation")
    for binding, value in (("model.batch_size", batch_size), ("model.training_steps", training_steps),
                           ("encoder.num_latent", num_latent)):
        if value is not None:
            check_number(binding, value, minimum=1, integer=True)
    check_binding(init_from is None or (isinstance(init_from, str) and init_from.strip() != ""), "model.init_from",
                  init_from, "the directory of a finished run")
    check_binding(isinstance(tensorboard, bool), "model.tensorboard", tensorboard, "True or False")
    check_binding(isinstance(dataset_name, str), "dataset.name", dataset_name, "a dataset name")
    check_binding(isinstance(source, str), "dataset.source", source,
                  '"auto", "official", "procedural" or "synthetic"')
    check_binding(isinstance(model_name, str), "model.name", model_name, "a model name")
    check_seed("model.random_seed", random_seed)
    check_binding(isinstance(metrics, (list, tuple)) and all(isinstance(m, str) for m in metrics),
                  "evaluation.metrics", metrics, "a list of metric names")
    check_binding(len(set(metrics)) == len(metrics), "evaluation.metrics", metrics, "each metric named once")
    check_seed("evaluation.random_seed", evaluation_seed)
    return Experiment(dataset_name, source, model_name, random_seed, tuple(metrics), evaluation_seed,
                      TrainingSettings(batch_size, training_steps, num_latent, init_from, tensorboard, precision,
                                       compile_step, cuda_graphs))


def binding_statements(text: str, where: str) -> list[config_parser.BindingStatement]:
    """The statements of gin `text` parsed WITHOUT executing anything: no import, no include, no call.

    Anything but a binding (or macro) of a configurable that is registered here is refused, so a config read back
    from a record (someone else's run directory) can never make dlbench import or run code."""
    statements = []
    try:
        for statement in config_parser.ConfigParser(text, gin.config.ParserDelegate(skip_unknown=True)):
            if not isinstance(statement, config_parser.BindingStatement):
                kind = type(statement).__name__.replace("Statement", "").lower()
                raise RecordError(f"{where}: line {statement.location.line_num} is an {kind} statement "
                                  f"({statement.location.line_content.strip()!r}), which is not accepted in a "
                                  "record; expected bindings of registered configurables only")
            unknown = _unknown_reference(statement.value)
            if unknown:
                raise RecordError(f"{where}: line {statement.location.line_num} refers to @{unknown}, which is not "
                                  "a registered configurable; the record is refused")
            statements.append(statement)
    except _GIN_ERRORS as exc:
        raise RecordError(one_line(exc, where)) from None
    return statements


def _unknown_reference(value: Any) -> str | None:
    if isinstance(value, gin.config._UnknownConfigurableReference):
        return value.selector
    if isinstance(value, (list, tuple)):
        return next((name for name in map(_unknown_reference, value) if name), None)
    if isinstance(value, dict):
        return next((name for name in map(_unknown_reference, value.values()) if name), None)
    return None


def check_record_config(text: str, where: str, registered: Iterable[str]) -> None:
    """Refuse a record's config that holds anything beyond bindings of `registered` configurables and macros."""
    known = set(registered) | set(CORE_CONFIGURABLES)
    for statement in binding_statements(text, where):
        is_macro = statement.arg_name == ""
        if not is_macro and statement.selector not in known:
            raise RecordError(f"{where}: line {statement.location.line_num} binds {statement.selector!r}, which no "
                              "installed plugin registers; the record is refused (install the plugin that made it)")


def fit_identity(text: str, evaluation_names: Iterable[str]) -> list[str]:
    """The canonical bindings of a config that determine the fitted model: every binding except those of
    metrics and of `evaluation`, sorted, so that evaluation settings never change a run's identity."""
    excluded = set(evaluation_names) | {EVALUATION_CONFIGURABLE}
    lines = []
    for statement in binding_statements(text, "config"):
        if statement.selector in excluded or (statement.selector, statement.arg_name) in OBSERVATION_BINDINGS:
            continue
        scope = f"{statement.scope}/" if statement.scope else ""
        target = f"{statement.selector}.{statement.arg_name}" if statement.arg_name else statement.selector
        lines.append(f"{scope}{target} = {statement.value!r}")
    return sorted(lines)


def bindings_of(text: str, configurable: str) -> dict[str, str]:
    """{parameter: repr(value)} of one configurable's unscoped bindings in gin `text`."""
    return {statement.arg_name: repr(statement.value) for statement in binding_statements(text, "config")
            if statement.selector == configurable and not statement.scope and statement.arg_name}


def identity_hash(payload: Any) -> str:
    """A short stable hash of JSON-ready `payload` (run ids, cache keys)."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:10]
