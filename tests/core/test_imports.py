"""A fast command line: what `import dlbench` and light commands pull in, by module name (not seconds)."""
import json
import subprocess
import sys

HEAVY = {"torch", "sklearn", "scipy", "matplotlib", "numpy", "gin", "h5py", "tqdm"}


def loaded_after(code: str) -> set[str]:
    script = f"import sys\n{code}\nprint('MODULES=' + __import__('json').dumps(sorted(sys.modules)))"
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    line = next(line for line in completed.stdout.splitlines() if line.startswith("MODULES="))
    return {name.split(".")[0] for name in json.loads(line[len("MODULES="):])}


def test_import_dlbench_loads_nothing_heavy():
    assert not loaded_after("import dlbench\nfrom dlbench import hookimpl, DlbenchError") & HEAVY


def test_help_answers_without_torch_or_scikit_learn():
    code = ("from dlbench.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass")
    assert not loaded_after(code) & HEAVY


def test_list_models_does_not_wait_for_scikit_learn_scipy_or_matplotlib():
    loaded = loaded_after("from dlbench.cli import main\nassert main(['list', 'models']) == 0")
    assert not loaded & {"sklearn", "scipy", "matplotlib"}
    assert "dlbench_linear_gaussian" in loaded  # the registry really was filled


def test_public_names_resolve_lazily():
    import dlbench

    for name in dlbench.__all__:
        assert getattr(dlbench, name) is not None, name
