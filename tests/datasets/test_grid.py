import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dlbench.datasets import dsprites, mpi3d, shapes3d
from dlbench.datasets.grid import FactorGrid, class_grid, select_factors
from dlbench.errors import ConfigError

GRIDS = [dsprites.GRID, shapes3d.GRID,
         FactorGrid(mpi3d.NAMES, mpi3d.FULL_SIZES, class_grid(mpi3d.FULL_SIZES))]


@pytest.mark.parametrize("grid", GRIDS, ids=lambda g: g.names[0])
@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_index_classes_round_trip(grid, data):
    index = data.draw(st.lists(st.integers(0, grid.num_points - 1), min_size=1, max_size=20))
    index = torch.tensor(index)
    classes = grid.unravel(index)
    assert torch.equal(grid.ravel(classes), index)
    # Independent reference: numpy's C-order unravel.
    assert np.array_equal(classes.numpy(), np.stack(np.unravel_index(index.numpy(),
                                                                      grid.sizes), 1))


@pytest.mark.parametrize("grid", GRIDS, ids=lambda g: g.names[0])
def test_first_and_last_rows(grid):
    classes = grid.unravel(torch.tensor([0, grid.num_points - 1]))
    assert classes[0].tolist() == [0] * len(grid.sizes)
    assert classes[1].tolist() == [s - 1 for s in grid.sizes]


def test_published_grids():
    assert dsprites.GRID.num_points == 737_280
    assert shapes3d.GRID.num_points == 480_000
    assert np.prod(mpi3d.FULL_SIZES) == 1_036_800
    orientation = dsprites.GRID.values[3]
    assert orientation[0] == 0 and abs(orientation[-1] - 2 * np.pi) < 1e-12
    assert torch.allclose(shapes3d.GRID.values[5][[0, 7, 14]],
                          torch.tensor([-30.0, 0.0, 30.0], dtype=torch.float64))


def test_snap_recovers_classes_from_noisy_values():
    grid = shapes3d.GRID
    classes = grid.unravel(torch.arange(0, grid.num_points, 997))
    values = torch.stack([grid.values[k][classes[:, k]] for k in range(6)], 1)
    noisy = values + 1e-4 * torch.randn(values.shape, dtype=torch.float64,
                                        generator=torch.Generator().manual_seed(0))
    assert torch.equal(grid.snap(noisy), classes)


def test_select_factors_rejects_unknown_names():
    assert select_factors(dsprites.GRID, dsprites.PAPER_FACTORS) == (1, 2, 3, 4, 5)
    with pytest.raises(ConfigError, match="colour"):
        select_factors(dsprites.GRID, ["colour"])


def test_leading_subgrid_checks_sizes():
    sub = dsprites.GRID.leading_subgrid((1, 2, 2, 3, 2, 2))
    assert sub.values[2].tolist() == pytest.approx([0.5, 0.6])
    with pytest.raises(ConfigError, match="factor_sizes"):
        dsprites.GRID.leading_subgrid((1, 4, 6, 40, 32, 32))
