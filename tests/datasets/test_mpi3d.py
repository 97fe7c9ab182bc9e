import warnings

import numpy as np
import pytest
import torch
from dataset_test_helpers import all_observations, checks_for, truncate

from dlbench.datasets import fixtures, mpi3d
from dlbench.datasets.files import DataWarning
from dlbench.errors import DataError

SIZES = (2, 2, 1, 1, 1, 2, 2)
real = mpi3d.FACTORIES["mpi3d_real"]


def test_stand_in_changes_with_every_factor_and_is_labelled():
    data = real(source="procedural")
    assert data.factor_sizes == (6, 6, 2, 3, 3, 40, 40) and len(data) == 1_036_800
    assert "stand-in of mpi3d_real" in data.describe()["stand_in"]
    base = torch.tensor([1, 1, 0, 1, 0, 20, 20])
    for k, size in enumerate(data.factor_sizes):
        changed = base.repeat(2, 1)
        changed[1, k] = size - 1
        first, second = data.observations_from_factors(changed)
        assert not torch.equal(first, second), data.factor_names[k]
    factors, images = data.sample(16, torch.Generator().manual_seed(0))
    assert torch.equal(real(source="procedural").observations_from_factors(factors), images)


def test_mean_pixel_near_mpi3d_toy():
    # MPI3D-toy's per-channel means (disent's statistics) are 0.227, 0.224, 0.227.
    _, images = real(source="procedural").sample(1500, torch.Generator().manual_seed(0))
    means = images.float().mean(dim=(0, 2, 3)) / 255
    assert (means - torch.tensor([0.227, 0.224, 0.227])).abs().max() < 0.08


def test_uncompressed_npz_is_memory_mapped_in_place(tmp_path):
    fixtures.write_mpi3d_npz(tmp_path / "mpi3d_real.npz", SIZES)
    data = real(data_dir=tmp_path, factor_sizes=SIZES)
    assert data.source == "official" and data.factor_sizes == SIZES
    procedural = real(source="procedural", factor_sizes=SIZES)
    assert torch.equal(all_observations(data), all_observations(procedural))
    assert not list((tmp_path / "cache").glob("*.npy"))  # no copy was made
    toy = mpi3d.FACTORIES["mpi3d_toy"]
    fixtures.write_mpi3d_npz(tmp_path / "mpi3d_toy.npz", SIZES)
    assert toy(data_dir=tmp_path, factor_sizes=SIZES).name == "mpi3d_toy"


def test_sizes_must_match_the_image_count(tmp_path):
    path = fixtures.write_mpi3d_npz(tmp_path / "mpi3d_real.npz", SIZES)
    with pytest.raises(DataError, match="16 images do not match factor sizes None"):
        real(path=path)
    with pytest.raises(DataError, match=r"\[2, 2, 1, 1, 1, 2, 1\]"):
        real(path=path, factor_sizes=(2, 2, 1, 1, 1, 2, 1))
    assert mpi3d.SIZES_BY_COUNT[460_800] == (4, 4, 2, 3, 3, 40, 40)


def test_compressed_member_is_refused_with_what_to_do(tmp_path):
    path = fixtures.write_mpi3d_npz(tmp_path / "mpi3d_real.npz", SIZES, compressed=True)
    with pytest.raises(DataError, match="stored compressed.*numpy.savez"):
        real(path=path, factor_sizes=SIZES)


def test_checksum_mismatch_only_warns(tmp_path):
    path = fixtures.write_mpi3d_npz(tmp_path / "mpi3d_real.npz", SIZES)
    with pytest.warns(DataWarning, match="md5 .* expected ffff"):
        data = real(path=path, factor_sizes=SIZES,
                    file_checks={path.name: {"md5": "f" * 32}})
    assert data.source == "official" and data.describe()["matches_reference"] is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert real(path=path, factor_sizes=SIZES,
                    file_checks=checks_for(path)).describe()["matches_reference"]


def test_bad_files_are_clear_errors(tmp_path):
    path = tmp_path / "mpi3d_real.npz"
    fixtures.write_mpi3d_npz(path, SIZES, images=np.zeros((16, 64, 64, 3), np.int16))
    with pytest.raises(DataError, match=r"images\]: shape .* int16"):
        real(path=path, factor_sizes=SIZES)
    np.savez(path, pixels=np.zeros((16, 64, 64, 3), np.uint8))
    with pytest.raises(DataError, match=r"no array 'images' \(it holds \['pixels'\]\)"):
        real(path=path, factor_sizes=SIZES)
    fixtures.write_mpi3d_npz(path, SIZES)
    truncate(path, 0.9)
    with pytest.raises(DataError, match="truncated"):
        real(path=path, factor_sizes=SIZES)
    np.savez(path, images=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataError, match="unpickling; refused"):
        real(path=path, factor_sizes=SIZES)
