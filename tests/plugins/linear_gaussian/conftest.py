import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """The plugin's tensors are tiny: on 2 shared cores, a second thread only adds contention
    (measured 8x slower AdamW steps at n = 8 with 2 threads on a loaded machine). Module scope,
    so that it is in force before the modules' own module-scoped fixtures compute."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    """No test sees the user's data or cache folders."""
    monkeypatch.setenv("DLBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("DLBENCH_DATA_DIR", raising=False)
