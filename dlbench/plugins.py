"""The one plugin manager: installed `dlbench` entry points first, then the built-in modules.

Built-ins are registered through exactly the same hooks as third-party code. A plugin that fails to
import is remembered with its reason instead of breaking the CLI; only a run that needs one of its
names fails, and its error says which plugin could not be loaded.
"""
from __future__ import annotations

import fnmatch
import functools
import importlib
import importlib.metadata
import inspect
from dataclasses import dataclass, field
from typing import Callable

import pluggy

import gin
from dlbench import hookspecs
from dlbench.errors import DuplicateNameError, UnknownNameError

ENTRY_POINT_GROUP = "dlbench"
BUILTIN_PLUGINS = ("dlbench.datasets", "dlbench.metrics")
# Names the core's own gin configurables use; no plugin may take them.
RESERVED_NAMES = frozenset({"dataset", "model", "evaluation"})
REGISTRY_HOOKS = {
    "models": "register_models",
    "datasets": "register_datasets",
    "metrics": "register_metrics",
    "plots": "register_plots",
    "benchmarks": "register_benchmarks",
}
# Registries whose factories users configure through gin.
CONFIGURABLE_KINDS = ("models", "datasets", "metrics")


@dataclass
class PluginInfo:
    name: str
    distribution: str
    version: str
    hooks: list[str] = field(default_factory=list)
    provides: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class Registration:
    name: str
    kind: str
    factory: Callable  # what to call: gin-configured for models, datasets and metrics
    plugin: str
    provided: Callable  # what the plugin registered, for its signature and docstring

    @property
    def doc(self) -> str:
        return (inspect.getdoc(self.provided) or "").split("\n", 1)[0]


class Registry:
    """Name -> factory for one kind, with wildcard listing and errors that list the choices."""

    def __init__(self, kind: str, load_failures: list[PluginInfo]):
        self.kind = kind
        self._entries: dict[str, Registration] = {}
        self._load_failures = load_failures

    def add(self, registration: Registration) -> None:
        self._entries[registration.name] = registration

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def names(self, pattern: str = "*") -> list[str]:
        return sorted(n for n in self._entries if fnmatch.fnmatchcase(n, pattern))

    def entries(self, pattern: str = "*") -> list[Registration]:
        return [self._entries[n] for n in self.names(pattern)]

    def get(self, name: str) -> Registration:
        try:
            return self._entries[name]
        except KeyError:
            singular = self.kind.rstrip("s")
            available = ", ".join(self.names()) or "none installed"
            message = f"unknown {singular} {name!r}; available: {available}"
            if self._load_failures:
                failed = "; ".join(f"{p.name} ({p.error})" for p in self._load_failures)
                message += f"; plugins that failed to load: {failed}"
            raise UnknownNameError(message) from None


class Plugins:
    """The loaded plugins and the registries they filled."""

    def __init__(self, builtin_modules: tuple[str, ...] = BUILTIN_PLUGINS):
        self.manager = pluggy.PluginManager(ENTRY_POINT_GROUP)
        self.manager.add_hookspecs(hookspecs)
        self.infos: list[PluginInfo] = []
        self._load_entry_points()
        for module_name in builtin_modules:
            self._register(module_name, lambda m=module_name: importlib.import_module(m),
                           distribution="dlbench", version=_version("dlbench"))
        failures = [info for info in self.infos if info.error]
        self.registries = {kind: Registry(kind, failures) for kind in REGISTRY_HOOKS}
        self._collect()

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
                name = entry_point.name if entry_point.name not in taken \
                    else f"{dist_name}:{entry_point.name}"
                taken.add(name)
                self._register(name, entry_point.load, distribution=dist_name,
                               version=dist.version)

    def _register(self, name: str, load: Callable, *, distribution: str, version: str) -> None:
        info = PluginInfo(name=name, distribution=distribution, version=version)
        self.infos.append(info)
        try:
            module = load()
        except Exception as exc:  # a broken plugin must not take the CLI down with it
            info.error = f"{type(exc).__name__}: {exc}".split("\n", 1)[0]
            return
        self.manager.register(module, name=name)
        info.hooks = sorted(h.name for h in self.manager.get_hookcallers(module) or [])

    def _collect(self) -> None:
        owners: dict[str, tuple[str, str]] = {name: ("core", "dlbench") for name in RESERVED_NAMES}
        by_name = {info.name: info for info in self.infos}
        for kind, hook_name in REGISTRY_HOOKS.items():
            hook_caller = getattr(self.manager.hook, hook_name)
            for impl in hook_caller.get_hookimpls():
                provided = impl.function() or {}
                for name, factory in provided.items():
                    # Plots are keyed by model name, so only the other kinds share one namespace.
                    if kind != "plots":
                        if name in owners:
                            other_kind, other_plugin = owners[name]
                            raise DuplicateNameError(
                                f"{kind.rstrip('s')} name {name!r} is provided by both plugin "
                                f"{other_plugin!r} ({other_kind}) and plugin {impl.plugin_name!r}; "
                                f"uninstall one of them")
                        owners[name] = (kind, impl.plugin_name)
                    configured = _gin_configurable(name, factory) \
                        if kind in CONFIGURABLE_KINDS else factory
                    self.registries[kind].add(
                        Registration(name, kind, configured, impl.plugin_name, factory))
                    by_name[impl.plugin_name].provides.setdefault(kind, []).append(name)


@functools.lru_cache(maxsize=None)
def _gin_configurable(name: str, factory: Callable) -> Callable:
    """Registers `factory` with gin under `name` once per process (gin's registry is global)."""
    return gin.external_configurable(factory, name=name)


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@functools.lru_cache(maxsize=1)
def get_plugins() -> Plugins:
    """The process-wide plugin manager, built on first use."""
    return Plugins()
