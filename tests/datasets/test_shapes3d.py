import numpy as np
import pytest
import torch
from dataset_test_helpers import all_observations, checks_for, leftover_caches, truncate

from dlbench.datasets import fixtures, shapes3d
from dlbench.errors import DataError

SIZES = (2, 2, 2, 2, 4, 2)


@pytest.fixture(scope="module")
def stand_in():
    return shapes3d.shapes3d(source="procedural")


def test_stand_in_is_deterministic_and_labelled(stand_in):
    generator = torch.Generator().manual_seed(1)
    factors, images = stand_in.sample(32, generator)
    assert torch.equal(stand_in.observations_from_factors(factors), images)
    # A fresh renderer of a sub-grid draws the shared grid points identically.
    again = shapes3d.shapes3d(source="procedural", factor_sizes=(10, 10, 10, 8, 4, 2))
    head = factors[factors[:, 5] < 2][:8]
    assert torch.equal(again.observations_from_factors(head),
                       stand_in.observations_from_factors(head))
    assert images.shape == (32, 3, 64, 64) and images.dtype == torch.uint8
    assert stand_in.describe()["source"] == "procedural"
    assert "ray-cast" in stand_in.describe()["stand_in"]


def test_hues_recolour_only_their_surface(stand_in):
    labels, _ = shapes3d.render_geometries(shapes3d.GRID.values[3][3:4], torch.tensor([0]),
                                           torch.tensor([0.0]))
    base = torch.tensor([0, 0, 0, 3, 0, 7])  # scale class 3, cube, azimuth 0: as above
    for k, surface in enumerate((shapes3d.FLOOR, shapes3d.WALL, shapes3d.OBJECT)):
        changed = base.repeat(2, 1)
        changed[1, k] = 5
        first, second = stand_in.observations_from_factors(changed)
        differs = (first != second).any(dim=0)
        assert differs.any()
        assert torch.equal(differs, labels[0] == surface), stand_in.factor_names[k]


def test_geometry_factors_change_the_image(stand_in):
    base = torch.tensor([1, 4, 8, 0, 0, 0])
    labels = {}
    for k in (3, 4, 5):
        changed = base.repeat(2, 1)
        changed[1, k] = stand_in.factor_sizes[k] - 1
        first, second = stand_in.observations_from_factors(changed)
        assert not torch.equal(first, second), stand_in.factor_names[k]
    # Larger scale: more object pixels.
    scale, shape, azimuth = torch.tensor([0.75, 1.25]), torch.tensor([2, 2]), torch.zeros(2)
    labels, shade = shapes3d.render_geometries(scale, shape, azimuth)
    small, large = (labels == shapes3d.OBJECT).sum(dim=(1, 2))
    assert 1.5 < large / small < 3.5  # area ~ scale^2 = 2.8 under perspective
    assert shade.min() >= shapes3d.AMBIENT - 1e-6 and shade.max() <= 1 + 1e-6


def test_mean_pixel_near_the_originals(stand_in):
    # The original's per-channel means (disent's statistics over all 480,000 images) are
    # 0.503, 0.579, 0.603; the stand-in must be within 0.12 of each.
    _, images = stand_in.sample(3000, torch.Generator().manual_seed(0))
    means = images.float().mean(dim=(0, 2, 3)) / 255
    assert (means - torch.tensor([0.503, 0.579, 0.603])).abs().max() < 0.12


@pytest.mark.parametrize("chunked", [False, True], ids=["contiguous", "gzip-chunked"])
def test_official_fixture_matches_the_stand_in(tmp_path, chunked):
    path = fixtures.write_shapes3d_h5(tmp_path / shapes3d.FILE_NAME, SIZES, chunked)
    official = shapes3d.shapes3d(data_dir=tmp_path, factor_sizes=SIZES,
                                 file_checks=checks_for(path))
    assert official.source == "official"
    procedural = shapes3d.shapes3d(source="procedural", factor_sizes=SIZES)
    assert torch.equal(all_observations(official), all_observations(procedural))


def test_checksum_mismatch_is_a_hard_failure(tmp_path):
    path = fixtures.write_shapes3d_h5(tmp_path / shapes3d.FILE_NAME, SIZES, True)
    with pytest.raises(DataError, match="size .* expected 267573662"):
        shapes3d.shapes3d(source="official", path=path, factor_sizes=SIZES)
    wrong = {path.name: {"sha256": "0" * 64}}
    with pytest.raises(DataError, match="sha256 .* expected 0000"):
        shapes3d.shapes3d(source="official", path=path, factor_sizes=SIZES, file_checks=wrong)
    assert leftover_caches(tmp_path / "cache") == []


def test_malformed_files_are_clear_errors_without_a_cache(tmp_path):
    import h5py

    n = int(np.prod(SIZES))
    good = fixtures.write_shapes3d_h5(tmp_path / "good.h5", SIZES, True).read_bytes()
    path = tmp_path / shapes3d.FILE_NAME
    cases = [("labels", np.zeros((n, 6)), r"labels row 0 .* is not the grid point"),
             ("labels", np.zeros((n, 5)), r"labels\]: shape"),
             ("images", np.zeros((n, 64, 64, 3), np.float32), r"images\]: shape .* float32"),
             ("labels", None, "no dataset 'labels'")]
    for key, replacement, message in cases:
        path.write_bytes(good)
        with h5py.File(path, "a") as handle:
            del handle[key]
            if replacement is not None:
                handle[key] = replacement
        with pytest.raises(DataError, match=message):
            shapes3d.shapes3d(source="official", path=path, factor_sizes=SIZES,
                              file_checks=checks_for(path))
    path.write_bytes(good)
    truncate(path, 0.5)
    with pytest.raises(DataError, match="not a readable HDF5"):
        shapes3d.shapes3d(source="official", path=path, factor_sizes=SIZES,
                          file_checks=checks_for(path))
    assert leftover_caches(tmp_path / "cache") == []
