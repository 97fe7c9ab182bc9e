import pytest
import torch
from cli_helpers import TINY_LINEAR_GIN


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The tiny linear solves run ~100x slower when two OpenMP threads share two busy cores; worker processes get
    one thread each from their executor, and runs in this process get one here."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def study(tmp_path):
    path = tmp_path / "study.gin"
    path.write_text(TINY_LINEAR_GIN)
    return path
