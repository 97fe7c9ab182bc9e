"""The installed dlbench version, read once from the package metadata."""
import functools
from importlib.metadata import PackageNotFoundError, version


@functools.lru_cache(maxsize=None)
def distribution_version(distribution: str = "dlbench") -> str:
    """The installed version of `distribution`; "0+unknown" when it runs from a source tree that was not installed."""
    try:
        return version(distribution)
    except PackageNotFoundError:
        return "0+unknown"
