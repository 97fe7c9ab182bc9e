import pytest


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    """No test sees the user's data or cache folders."""
    monkeypatch.setenv("DLBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("DLBENCH_DATA_DIR", raising=False)
