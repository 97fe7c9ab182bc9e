import pytest
from cli_helpers import TINY_LINEAR_GIN


@pytest.fixture
def tiny_linear_gin(tmp_path):
    """A linear-Gaussian experiment small enough to run in a second or two."""
    path = tmp_path / "tiny.gin"
    path.write_text(TINY_LINEAR_GIN)
    return path
