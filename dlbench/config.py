"""Gin configuration: the core's own configurables, stacked parsing, and one-line errors."""
from __future__ import annotations

import re
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import gin
from dlbench.errors import ConfigError

# gin appends "(file.gin, line N)" to syntax errors; the location is printed in front instead.
_GIN_SYNTAX_SUFFIX = re.compile(r" [(][^)]*line \d+[)]$")
_GIN_LOCATION = re.compile(r'In file "(?P<file>[^"]+)", line (?P<line>\d+)')


@dataclass(frozen=True)
class Experiment:
    """What the core itself reads from the config: which dataset, model and metrics to use."""
    dataset_name: str
    dataset_source: str
    model_name: str
    random_seed: int
    metric_names: tuple[str, ...]
    evaluation_seed: int


@gin.configurable("dataset")
def dataset_choice(name=gin.REQUIRED, source="auto"):
    """The ground-truth dataset of a run: its registered name and its source."""
    return name, source


@gin.configurable("model")
def model_choice(name=gin.REQUIRED, random_seed=0):
    """The model of a run: its registered name and the seed of its fit."""
    return name, random_seed


@gin.configurable("evaluation")
def evaluation_choice(metrics=(), random_seed=0):
    """The sample-based metrics scored after the fit, and the seed of their sampling."""
    return metrics, random_seed


CORE_CONFIGURABLES = {"dataset": dataset_choice, "model": model_choice,
                      "evaluation": evaluation_choice}


def check_binding(condition: bool, binding: str, value: Any, accepted: str) -> None:
    """Raise a ConfigError naming the binding, its bad value and what would be accepted."""
    if not condition:
        raise ConfigError(f"{binding} = {value!r} is not accepted; expected {accepted}")


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


def parse(config_files: Sequence[str | Path], bindings: Sequence[str]) -> None:
    """Parse gin files, then `-p` bindings, in order (later ones override earlier ones)."""
    gin.clear_config()
    for config_file in config_files:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} not found; give the path of a .gin file")
        gin.add_config_file_search_path(str(path.parent.resolve()))
        try:
            gin.parse_config_file(str(path))
        except (ValueError, SyntaxError, tokenize.TokenError, TypeError, KeyError, IOError) as exc:
            raise ConfigError(one_line(exc, str(path))) from exc
    parse_bindings(bindings)
    gin.finalize()


def parse_bindings(bindings: Sequence[str]) -> None:
    """Parse `-p` bindings in order, naming the one that fails."""
    for binding in bindings:
        try:
            gin.parse_config(binding)
        except (ValueError, SyntaxError, tokenize.TokenError, TypeError, KeyError) as exc:
            raise ConfigError(one_line(exc, f"binding {binding!r}")) from exc


_MISSING_REQUIRED = re.compile(r"Required bindings for `(?P<name>\w+)` not provided in config: "
                               r"\[(?P<params>[^]]*)\]")


def call_configured(function: Callable, configurable_name: str, *args, **kwargs):
    """Call a gin configurable, turning a missing required binding into a ConfigError."""
    try:
        return function(*args, **kwargs)
    except RuntimeError as exc:
        missing = _MISSING_REQUIRED.search(str(exc))
        if not missing:
            raise
        params = [p.strip(" '\"") for p in missing["params"].split(",")]
        wanted = ", ".join(f"{configurable_name}.{p}" for p in params)
        raise ConfigError(f"{wanted} must be set, in a gin file or with -p") from exc


def read_experiment() -> Experiment:
    """The core's choices from the parsed config, validated."""
    dataset_name, source = call_configured(dataset_choice, "dataset")
    model_name, random_seed = call_configured(model_choice, "model")
    metrics, evaluation_seed = call_configured(evaluation_choice, "evaluation")
    check_binding(isinstance(dataset_name, str), "dataset.name", dataset_name, "a dataset name")
    check_binding(isinstance(source, str), "dataset.source", source,
                  '"auto", "official", "procedural" or "synthetic"')
    check_binding(isinstance(model_name, str), "model.name", model_name, "a model name")
    check_binding(isinstance(random_seed, int) and random_seed >= 0, "model.random_seed",
                  random_seed, "an integer >= 0")
    check_binding(isinstance(metrics, (list, tuple)) and all(isinstance(m, str) for m in metrics),
                  "evaluation.metrics", metrics, "a list of metric names")
    check_binding(isinstance(evaluation_seed, int) and evaluation_seed >= 0,
                  "evaluation.random_seed", evaluation_seed, "an integer >= 0")
    return Experiment(dataset_name, source, model_name, random_seed, tuple(metrics),
                      evaluation_seed)
