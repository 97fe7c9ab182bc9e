"""The GPU check's Python environment, prepared with no network, each way tried in turn until one runs this checkout:

1. reuse: the interpreter already imports this checkout's dlbench and both plugins (and sees their entry points);
2. venv: a virtual environment under .gpu-check that sees every package of the machine's interpreter (its CUDA torch,
   also when that interpreter is itself a venv, whose packages `--system-site-packages` alone would not show), with
   this checkout installed editable by `pip --no-index --no-build-isolation --no-deps`; installing into a venv is
   what PEP 668 asks of an "externally-managed" system Python;
3. source tree: the machine's interpreter with the checkout on PYTHONPATH and the plugins' entry points written as
   distribution metadata beside it (needs neither pip nor setuptools).
Requirements still missing then are installed from a wheelhouse, when there is one, into a folder on PYTHONPATH.
Standard library only: it runs before anything is installed.
"""
from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

PLUGIN_DIRS = ("plugins/linear_gaussian", "plugins/deep_vae")
PACKAGES = ("dlbench", "dlbench_linear_gaussian", "dlbench_deep_vae")
# Where each of this checkout's packages is found, and the dlbench entry points the interpreter sees; nothing is
# imported, so a missing requirement cannot hide the answer.
PROBE = """
import importlib.metadata, importlib.util, json, sys
origins = {name: getattr(importlib.util.find_spec(name), "origin", None) for name in sys.argv[1:]}
plugins = sorted({entry.name for entry in importlib.metadata.entry_points(group="dlbench")})
print(json.dumps({"origins": origins, "plugins": plugins}))
"""
SITE_DIRS = "import json, site; print(json.dumps([*site.getsitepackages(), site.getusersitepackages()]))"
VERSIONS = """
import importlib.metadata, json, sys
found = {}
for name in sys.argv[1:]:
    try:
        found[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        found[name] = None
print(json.dumps(found))
"""


@dataclass
class Environment:
    """The interpreter the parts run with, the variables they need, and how it was prepared."""

    python: str
    how: str = "none"
    variables: dict[str, str] = field(default_factory=dict)
    attempts: list[dict] = field(default_factory=list)
    requirements: dict[str, str | None] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return self.how != "none"

    def process_env(self) -> dict[str, str]:
        return {**os.environ, **self.variables}

    def describe(self) -> dict:
        missing = sorted(name for name, version in self.requirements.items() if version is None)
        return {"python": self.python, "how": self.how, "variables": self.variables, "attempts": self.attempts,
                "requirements": self.requirements, "missing_requirements": missing}


class Deadline:
    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return max(0.0, self.end - time.monotonic())


def _run(command: list[str], deadline: Deadline, env: dict[str, str] | None = None, cwd: Path | None = None
         ) -> tuple[int, str]:
    """(exit status, output) of a command given what is left of the deadline; 124 when it ran out."""
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=max(1.0, deadline.left()),
                                   env=env, cwd=cwd)
    except subprocess.TimeoutExpired:
        return 124, f"timed out: {' '.join(command)}"
    except OSError as exc:
        return 127, f"{command[0]}: {exc}"
    return completed.returncode, completed.stdout + completed.stderr


def _json_of(command: list[str], deadline: Deadline, env=None, cwd=None):
    code, output = _run(command, deadline, env, cwd)
    if code != 0:
        raise RuntimeError(output.strip().splitlines()[-1] if output.strip() else f"exit status {code}")
    return json.loads(output.strip().splitlines()[-1])


def _setup_cfg(directory: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(directory / "setup.cfg")
    return parser


def requirement_specifiers(repo: Path) -> list[str]:
    """Every third-party requirement of dlbench, its test extra and the two plugins, as setup.cfg writes it."""
    lines = []
    for directory in (repo, *(repo / plugin for plugin in PLUGIN_DIRS)):
        parser = _setup_cfg(directory)
        for option, section in (("install_requires", "options"), ("test", "options.extras_require")):
            lines += [line.strip() for line in parser.get(section, option, fallback="").splitlines() if line.strip()]
    return sorted({line for line in lines if not line.startswith("dlbench")}, key=str.lower)


def requirement_names(repo: Path) -> list[str]:
    """The distribution names of `requirement_specifiers`."""
    names = [re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", line).group(0) for line in requirement_specifiers(repo)]
    return sorted(set(names), key=str.lower)


def _runs_this_checkout(python: str, repo: Path, work: Path, deadline: Deadline, env=None) -> str | None:
    """None when `python` finds this checkout's packages and the plugins' entry points; else what is wrong. It runs
    outside the checkout, where `python -c` would find dlbench in the current directory."""
    try:
        found = _json_of([python, "-c", PROBE, *PACKAGES], deadline, env, cwd=work)
    except (RuntimeError, ValueError) as exc:
        return f"probe failed: {exc}"
    elsewhere = [f"{name} from {origin}" for name, origin in found["origins"].items()
                 if origin is None or not Path(origin).resolve().is_relative_to(repo)]
    if elsewhere:
        return "does not import this checkout: " + ", ".join(elsewhere)
    absent = {"deep_vae", "linear_gaussian"} - set(found["plugins"])
    return f"no dlbench entry points for {sorted(absent)}" if absent else None


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _make_venv(base: str, venv: Path, deadline: Deadline) -> None:
    """A venv without its own pip that sees the base interpreter's packages (pip and setuptools among them)."""
    code, output = _run([base, "-m", "venv", "--clear", "--system-site-packages", "--without-pip", str(venv)],
                        deadline)
    if code != 0:
        raise RuntimeError(f"python -m venv failed ({code}): {output.strip()[-300:]}")
    site_dirs = _json_of([base, "-c", SITE_DIRS], deadline)
    target = _json_of([str(_venv_python(venv)), "-c", "import json, site; print(json.dumps(site.getsitepackages()))"],
                      deadline)[0]
    lines = [f"import site; site.addsitedir({directory!r})" for directory in site_dirs if Path(directory).is_dir()]
    Path(target, "_gpu_check_base_site.pth").write_text("\n".join(lines) + "\n")


def _install_venv(base: str, repo: Path, venv: Path, deadline: Deadline) -> dict[str, str]:
    _make_venv(base, venv, deadline)
    editable = [arg for directory in (".", *PLUGIN_DIRS) for arg in ("-e", directory)]
    code, output = _run([str(_venv_python(venv)), "-m", "pip", "install", "-q", "--no-index", "--no-build-isolation",
                         "--no-deps", "--disable-pip-version-check", *editable], deadline, cwd=repo)
    if code != 0:
        raise RuntimeError(f"pip install failed ({code}): {output.strip()[-400:]}")
    return {}


def _write_distribution(site: Path, directory: Path) -> None:
    """Distribution metadata of one of the checkout's setup.cfg projects: its name, version and entry points."""
    parser = _setup_cfg(directory)
    name, version = parser.get("metadata", "name"), parser.get("metadata", "version")
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    groups = [f"[{group}]\n{parser.get('options.entry_points', group).strip()}\n"
              for group in ("dlbench",) if parser.has_option("options.entry_points", group)]
    (info / "entry_points.txt").write_text("\n".join(groups))


def _source_tree(repo: Path, site: Path) -> dict[str, str]:
    for directory in (repo, *(repo / plugin for plugin in PLUGIN_DIRS)):
        _write_distribution(site, directory)
    return {"PYTHONPATH": os.pathsep.join([str(site), str(repo), *(str(repo / p) for p in PLUGIN_DIRS)])}


def _with_path(variables: dict[str, str], directory: Path) -> dict[str, str]:
    paths = [str(directory), variables.get("PYTHONPATH", ""), os.environ.get("PYTHONPATH", "")]
    return {**variables, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


def _install_missing(environment: Environment, wheelhouse: Path, work: Path, deadline: Deadline) -> None:
    """Each requirement the environment lacks, from the wheelhouse into a folder on PYTHONPATH (not the machine's
    site-packages: PEP 668 does not apply to --target), one at a time so that one without a wheel stops no other."""
    target = work / "wheels-site"
    # The wheelhouse alone: no pip configuration's own find-links or index.
    only_wheelhouse = {**environment.process_env(), "PIP_CONFIG_FILE": os.devnull, "PIP_FIND_LINKS": ""}
    for name in [name for name, version in environment.requirements.items() if version is None]:
        code, output = _run([environment.python, "-m", "pip", "install", "-q", "--no-index", "--no-deps",
                             "--disable-pip-version-check", "--find-links", str(wheelhouse), "--target", str(target),
                             name], deadline, only_wheelhouse)
        environment.attempts.append({"step": f"wheel {name}", "ok": code == 0,
                                     "detail": "" if code == 0 else output.strip()[-200:]})
    environment.variables = _with_path(environment.variables, target)
    environment.requirements = _json_of([environment.python, "-c", VERSIONS, *environment.requirements], deadline,
                                        environment.process_env())


def _attempt(environment: Environment, how: str, python: str, repo: Path, work: Path, deadline: Deadline,
             install=dict) -> bool:
    """Install one way (`install` returns the variables it needs) and check that it runs this checkout."""
    try:
        variables = install()
        problem = _runs_this_checkout(python, repo, work, deadline, {**os.environ, **variables})
    except (OSError, RuntimeError, ValueError) as exc:
        problem = f"{type(exc).__name__}: {exc}"
    environment.attempts.append({"step": how, "ok": problem is None, "detail": problem or ""})
    if problem is None:
        environment.python, environment.how, environment.variables = python, how, variables
    return problem is None


def prepare(repo: Path, base: str, work: Path, wheelhouse: Path | None, seconds: float,
            reinstall: bool = False) -> Environment:
    """The first way (see the module docstring) whose interpreter runs this checkout, within `seconds` (with
    `reinstall`, a fresh venv first); then the versions of every requirement, the missing ones installed from the
    wheelhouse where it has them."""
    deadline, repo = Deadline(seconds), repo.resolve()
    base = str(Path(shutil.which(base) or base).absolute())  # not resolved: a venv's python is a link
    work.mkdir(parents=True, exist_ok=True)
    venv, environment = work / "venv", Environment(base)
    venv_python = str(_venv_python(venv))
    ((not reinstall and _attempt(environment, "reused", base, repo, work, deadline))
     or (not reinstall and Path(venv_python).exists()
         and _attempt(environment, "venv (reused)", venv_python, repo, work, deadline))
     or _attempt(environment, "venv", venv_python, repo, work, deadline,
                 lambda: _install_venv(base, repo, venv, deadline))
     or _attempt(environment, "source tree", base, repo, work, deadline,
                 lambda: _source_tree(repo, work / "source-site")))
    environment.requirements = _json_of([environment.python, "-c", VERSIONS, *requirement_names(repo)], deadline,
                                        environment.process_env())
    if wheelhouse is not None and wheelhouse.is_dir() and None in environment.requirements.values():
        _install_missing(environment, wheelhouse, work, deadline)
    return environment
