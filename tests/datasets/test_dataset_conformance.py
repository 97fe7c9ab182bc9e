"""Every built-in dataset, built through the registry as a run builds it, passes dlbench's conformance kit."""
import functools

from dlbench import create_dataset
from dlbench.testing import DatasetUnderTest, parametrize_with_checks

SMALL_GRIDS = {"dsprites": (1, 3, 2, 3, 4, 4), "shapes3d": (2, 2, 3, 2, 4, 3), "mpi3d_real": (2, 3, 2, 1, 3, 4, 4),
               "mpi3d_toy": (2, 2, 1, 3, 1, 2, 2), "mpi3d_realistic": (1, 2, 2, 2, 2, 2, 3)}


@parametrize_with_checks([
    DatasetUnderTest(functools.partial(create_dataset, name, source="procedural", factor_sizes=sizes), name=name)
    for name, sizes in SMALL_GRIDS.items()])
def test_builtin_datasets_conform(subject, check, tmp_path):
    check(subject, tmp_path)
