"""The one plugin manager: installed `dlbench` entry points first, then the built-in modules.

Built-ins are registered through exactly the same hooks as third-party code. Loading is strict, as
pytest's is: a plugin that fails to import, or implements a hook that does not exist (a misspelt
`register_model`), is remembered with its reason instead of breaking the CLI; only a run that needs
one of its names fails, and its error says which plugin could not be loaded. Plugins named in
$DLBENCH_DISABLE_PLUGINS (comma-separated) or `--disable-plugin` are not imported at all.

Registries are filled on first use, so commands that need no model, dataset or metric (`--help`,
`plugins` of a broken install) never import them.
"""
from __future__ import annotations

import fnmatch
import functools
import importlib
import importlib.metadata
import inspect
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import pluggy

from dlbench import hookspecs
from dlbench.errors import ConfigError, DuplicateNameError, UnknownNameError

ENTRY_POINT_GROUP = "dlbench"
BUILTIN_PLUGINS = ("dlbench.datasets", "dlbench.metrics", "dlbench.studies")
DISABLE_ENV = "DLBENCH_DISABLE_PLUGINS"
# Names the core's own gin configurables use; no plugin may take them.
RESERVED_NAMES = frozenset({"dataset", "model", "evaluation"})
REGISTRY_HOOKS = {
    "models": "register_models",
    "datasets": "register_datasets",
    "metrics": "register_metrics",
    "plots": "register_plots",
    "benchmarks": "register_benchmarks",
}
# Registries whose factories users configure through gin: their names share gin's one namespace.
CONFIGURABLE_KINDS = ("models", "datasets", "metrics")


@dataclass
class PluginInfo:
    name: str
    distribution: str
    version: str
    hooks: list[str] = field(default_factory=list)
    provides: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None
    disabled: bool = False


@dataclass(frozen=True)
class Registration:
    name: str
    kind: str
    factory: Callable  # what to call: gin-configured for models, datasets and metrics
    plugin: str
    provided: Callable  # what the plugin registered, for its signature and docstring
    distribution: str = "dlbench"
    version: str = "unknown"

    @property
    def doc(self) -> str:
        return (inspect.getdoc(self.provided) or "").split("\n", 1)[0]


class Registry:
    """Name -> factory for one kind, with wildcard listing and errors that list the choices."""

    def __init__(self, kind: str, plugins: Plugins):
        self.kind = kind
        self._entries: dict[str, Registration] = {}
        self._plugins = plugins

    def add(self, registration: Registration) -> None:
        self._entries[registration.name] = registration

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def names(self, pattern: str = "*") -> list[str]:
        self._plugins.require_no_conflicts()
        return sorted(n for n in self._entries if fnmatch.fnmatchcase(n, pattern))

    def entries(self, pattern: str = "*") -> list[Registration]:
        return [self._entries[n] for n in self.names(pattern)]

    def get(self, name: str) -> Registration:
        self._plugins.require_no_conflicts()
        try:
            return self._entries[name]
        except KeyError:
            singular = self.kind.rstrip("s")
            available = ", ".join(self.names()) or "none installed"
            message = f"unknown {singular} {name!r}; available: {available}"
            failures = self._plugins.failures()
            if failures:
                failed = "; ".join(f"{p.name} ({p.error})" for p in failures)
                message += f"; plugins that failed to load: {failed}"
            raise UnknownNameError(message) from None


def disabled_from_environment() -> frozenset[str]:
    return frozenset(name.strip() for name in os.environ.get(DISABLE_ENV, "").split(",") if name.strip())


class Plugins:
    """The loaded plugins and the registries they fill."""

    def __init__(self, builtin_modules: tuple[str, ...] = BUILTIN_PLUGINS, disabled: Iterable[str] = ()):
        self.manager = pluggy.PluginManager(ENTRY_POINT_GROUP)
        self.manager.add_hookspecs(hookspecs)
        self.infos: list[PluginInfo] = []
        self.disabled = frozenset(disabled)
        self._load_entry_points()
        for module_name in builtin_modules:
            self._load(module_name, lambda m=module_name: importlib.import_module(m),
                       distribution="dlbench", version=_version("dlbench"))
        self._reject_unknown_hooks()
        unknown = sorted(self.disabled - {info.name for info in self.infos} - {i.distribution for i in self.infos})
        if unknown:
            installed = ", ".join(info.name for info in self.infos)
            raise ConfigError(f"disabled plugin {unknown[0]!r} (from --disable-plugin or ${DISABLE_ENV}) is not "
                              f"accepted; expected one of the installed plugins: {installed}")
        self.conflicts: list[str] = []

    @functools.cached_property
    def registries(self) -> dict[str, Registry]:
        registries = {kind: Registry(kind, self) for kind in REGISTRY_HOOKS}
        self._collect(registries)
        return registries

    @property
    def models(self) -> Registry:
        return self.registries["models"]

    @property
    def datasets(self) -> Registry:
        return self.registries["datasets"]

    @property
    def metrics(self) -> Registry:
        return self.registries["metrics"]

    @property
    def plots(self) -> Registry:
        return self.registries["plots"]

    @property
    def benchmarks(self) -> Registry:
        return self.registries["benchmarks"]

    def failures(self) -> list[PluginInfo]:
        return [info for info in self.infos if info.error]

    def info(self, plugin_name: str) -> PluginInfo:
        return next(info for info in self.infos if info.name == plugin_name)

    def require_no_conflicts(self) -> None:
        """Two plugins providing one name make every use of the registries ambiguous: refuse it, naming both."""
        _ = self.registries  # collecting them is what finds the conflicts
        if self.conflicts:
            raise DuplicateNameError(self.conflicts[0])

    def add_commands(self, subparsers) -> None:
        """Let every plugin add its subcommands (the built-in `data` and `evaluate` come the same way)."""
        self.manager.hook.register_commands(subparsers=subparsers)

    def _load_entry_points(self) -> None:
        # A distribution found twice on sys.path is loaded once; two distributions that chose
        # the same entry-point name both load, the later one under a qualified name.
        seen: set[tuple[str, str]] = set()
        taken: set[str] = set()
        for dist in importlib.metadata.distributions():
            dist_name = dist.metadata["Name"] or "?"
            for entry_point in dist.entry_points:
                key = (dist_name, entry_point.name)
                if entry_point.group != ENTRY_POINT_GROUP or key in seen:
                    continue
                seen.add(key)
                name = entry_point.name if entry_point.name not in taken else f"{dist_name}:{entry_point.name}"
                taken.add(name)
                self._load(name, entry_point.load, distribution=dist_name, version=dist.version)

    def _load(self, name: str, load: Callable, *, distribution: str, version: str) -> None:
        info = PluginInfo(name=name, distribution=distribution, version=version)
        self.infos.append(info)
        if name in self.disabled or distribution in self.disabled:
            info.disabled = True
            return
        try:
            module = load()
            self.manager.register(module, name=name)
        except Exception as exc:  # a broken plugin must not take the CLI down with it
            info.error = f"{type(exc).__name__}: {exc}".split("\n", 1)[0]
            return
        info.hooks = sorted(h.name for h in self.manager.get_hookcallers(module) or [])

    def _reject_unknown_hooks(self) -> None:
        """pluggy's check_pending finds a hook implementation without a spec; its plugin is unloaded and marked
        failed, naming the hook and the ones that exist, instead of being silently ignored."""
        known = ", ".join(sorted(name for name in dir(hookspecs) if name.startswith("register_")))
        while True:
            try:
                self.manager.check_pending()
                return
            except pluggy.PluginValidationError as exc:
                plugin_name = self.manager.get_name(exc.plugin)
                unknown = re.search(r"unknown hook '([^']+)'", str(exc))
                info = self.info(plugin_name)
                info.error = (f"unknown hook {unknown[1] if unknown else '?'!r}; dlbench's hooks are {known}")
                info.hooks = []
                self.manager.unregister(exc.plugin)

    def _collect(self, registries: dict[str, Registry]) -> None:
        owners: dict[tuple[str, str], tuple[str, str]] = {
            ("configurable", name): ("core", "dlbench") for name in RESERVED_NAMES}
        for kind, hook_name in REGISTRY_HOOKS.items():
            namespace = "configurable" if kind in CONFIGURABLE_KINDS else kind
            hook_caller = getattr(self.manager.hook, hook_name)
            for impl in hook_caller.get_hookimpls():
                info = self.info(impl.plugin_name)
                try:
                    provided = impl.function() or {}
                except Exception as exc:  # a plugin whose hook breaks is reported, not allowed to break the CLI
                    info.error = f"{hook_name} raised {type(exc).__name__}: {exc}".split("\n", 1)[0]
                    continue
                for name, factory in provided.items():
                    owner = owners.get((namespace, name))
                    if owner is not None:
                        other_kind, other_plugin = owner
                        self.conflicts.append(
                            f"{kind.rstrip('s')} name {name!r} is provided by both plugin {other_plugin!r} "
                            f"({other_kind}) and plugin {impl.plugin_name!r}; uninstall one of them or switch one "
                            f"off with --disable-plugin NAME")
                        info.provides.setdefault(kind, []).append(f"{name} (CONFLICT)")
                        continue
                    owners[(namespace, name)] = (kind, impl.plugin_name)
                    configured = _gin_configurable(name, factory) if kind in CONFIGURABLE_KINDS else factory
                    registries[kind].add(Registration(name, kind, configured, impl.plugin_name, factory,
                                                      info.distribution, info.version))
                    info.provides.setdefault(kind, []).append(name)


@functools.lru_cache(maxsize=None)
def _gin_configurable(name: str, factory: Callable) -> Callable:
    """Registers `factory` with gin under `name` once per process (gin's registry is global)."""
    import gin  # only registries that are used pay for gin

    return gin.external_configurable(factory, name=name)


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@functools.lru_cache(maxsize=None)
def _plugins_for(disabled: frozenset[str]) -> Plugins:
    return Plugins(disabled=disabled)


def get_plugins() -> Plugins:
    """The process-wide plugin manager, built on first use, without the plugins $DLBENCH_DISABLE_PLUGINS names."""
    return _plugins_for(disabled_from_environment())


def parameter_descriptions(factory: Callable) -> dict[str, str]:
    """{parameter: description} from the `Args:` sections of a factory's docstring, and for a class of its bases'
    docstrings too (shared parameters are documented once, where they are defined)."""
    factory = getattr(factory, "__wrapped__", factory)
    owners = [c for c in factory.__mro__ if c is not object] if inspect.isclass(factory) else [factory]
    descriptions: dict[str, str] = {}
    for owner in reversed(owners):
        descriptions.update(_args_section(inspect.getdoc(owner) or ""))
    return descriptions


def _args_section(doc: str) -> dict[str, str]:
    """The Google-style `Args:` section of a docstring: `name: text` lines at the section's indent, continuation
    lines indented deeper."""
    lines = doc.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() in ("Args:", "Parameters:")), None)
    if start is None:
        return {}
    descriptions: dict[str, str] = {}
    current, base_indent = None, None
    for line in lines[start + 1:]:
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 0:
            break  # the section ended
        base_indent = indent if base_indent is None else base_indent
        entry = re.match(r"\s*(\w+)(?: \([^)]*\))?:\s*(.*)", line)
        if indent == base_indent and entry:
            current = entry[1]
            descriptions[current] = entry[2]
        elif current:
            descriptions[current] += " " + line.strip()
    return descriptions


def _create(kind: str, name: str, arguments: dict[str, Any]):
    """Build a registered object outside gin (plugin tests, notebooks), refusing keywords its factory lacks."""
    registration = get_plugins().registries[kind].get(name)
    signature = inspect.signature(registration.provided)
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    unknown = [key for key in arguments if key not in signature.parameters and not accepts_any]
    if unknown:
        accepted = ", ".join(p for p in signature.parameters) or "no parameters"
        raise ConfigError(f"{kind.rstrip('s')} {name!r}: parameter {unknown[0]!r} is not accepted; expected one of "
                          f"{accepted}")
    return registration.provided(**arguments)


def create_dataset(name: str, source: str = "auto", device="cpu", **parameters):
    """Build the registered dataset `name` (e.g. create_dataset("dsprites", source="procedural")), as a run would."""
    import torch

    return _create("datasets", name, {"source": source, "device": torch.device(device), **parameters})


def create_model(name: str, **hyperparameters):
    """Build the registered model `name` with the given hyperparameters (the rest take their defaults)."""
    return _create("models", name, hyperparameters)


def create_metric(name: str, **parameters):
    """Build the registered metric `name` with the given parameters (the rest take their defaults)."""
    return _create("metrics", name, parameters)
