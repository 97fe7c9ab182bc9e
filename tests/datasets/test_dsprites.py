import numpy as np
import pytest
import torch
from dataset_test_helpers import all_observations, checks_for, leftover_caches, truncate

from dlbench.datasets import dsprites, fixtures
from dlbench.errors import ConfigError, DataError

SIZES = (1, 3, 2, 4, 2, 2)


def test_defaults_are_the_papers_five_factors(capsys):
    data = dsprites.dsprites()
    assert data.source == "procedural"
    assert "source auto -> procedural" in capsys.readouterr().err
    assert data.factor_names == ("shape", "scale", "orientation", "posX", "posY")
    assert data.factor_sizes == (3, 6, 40, 32, 32) and len(data) == 737_280
    assert data.observation_shape == (1, 64, 64)
    assert data.describe()["source"] == "procedural"
    assert dsprites.dsprites(source="procedural", factors=None).factor_sizes[0] == 1


def test_sample_is_seeded_uint8_and_binary():
    data = dsprites.dsprites(source="procedural")
    factors, images = data.sample(64, torch.Generator().manual_seed(3))
    again_factors, again = data.sample(64, torch.Generator().manual_seed(3))
    assert factors.dtype == torch.int64 and images.dtype == torch.uint8
    assert torch.equal(factors, again_factors) and torch.equal(images, again)
    assert set(images.unique().tolist()) <= {0, 255}
    assert (factors < torch.tensor(data.factor_sizes)).all() and (factors >= 0).all()


def test_orientation_endpoints_coincide_for_every_shape():
    data = dsprites.dsprites(source="procedural")
    factors = torch.tensor([[s, 5, o, 10, 20] for s in range(3) for o in (0, 39)])
    images = data.observations_from_factors(factors)
    assert torch.equal(images[0::2], images[1::2])


def _centroid(image):
    rows, cols = torch.nonzero(image[0], as_tuple=True)
    return cols.float().mean(), rows.float().mean()


def test_every_factor_changes_the_image_where_it_should():
    data = dsprites.dsprites(source="procedural")
    base = torch.tensor([0, 2, 5, 10, 10])
    for k, size in enumerate(data.factor_sizes):
        changed = base.repeat(2, 1)
        changed[1, k] = size - 1
        first, second = data.observations_from_factors(changed)
        assert not torch.equal(first, second), data.factor_names[k]
    scales = data.observations_from_factors(torch.tensor([[0, 0, 0, 16, 16], [0, 5, 0, 16, 16]]))
    # Area grows with scale squared: 0.5 -> 1.0 quadruples the lit pixels (up to rasterising the edges).
    ratio = (scales[1] > 0).sum() / (scales[0] > 0).sum()
    assert 3.4 < ratio < 4.6
    moved = data.observations_from_factors(torch.tensor([[1, 3, 0, 0, 0], [1, 3, 0, 31, 0],
                                                         [1, 3, 0, 0, 31]]))
    (x0, y0), (x1, y1), (x2, y2) = (_centroid(m) for m in moved)
    assert x1 - x0 > 30 and abs(y1 - y0) < 0.5 and y2 - y0 > 30 and abs(x2 - x0) < 0.5


def test_sprites_stay_inside_the_frame():
    data = dsprites.dsprites(source="procedural")
    corners = torch.tensor([[0, 5, o, x, y] for o in range(0, 40, 3) for x in (0, 31)
                            for y in (0, 31)])
    images = data.observations_from_factors(corners)[:, 0]
    border = torch.cat([images[:, 0], images[:, -1], images[:, :, 0], images[:, :, -1]], 1)
    assert border.max() == 0


def test_mean_pixel_near_the_originals():
    # The original's mean pixel is 0.0425 (its 737,280 images); we accept 0.038..0.047.
    data = dsprites.dsprites(source="procedural")
    _, images = data.sample(4000, torch.Generator().manual_seed(0))
    assert 0.038 < images.float().mean() / 255 < 0.047


@pytest.mark.parametrize("writer", [fixtures.write_dsprites_npz, fixtures.write_dsprites_hdf5])
def test_official_fixture_matches_the_stand_in_image_for_image(tmp_path, writer):
    name = dsprites.NPZ_NAME if writer is fixtures.write_dsprites_npz else dsprites.HDF5_NAME
    path = writer(tmp_path / name, SIZES)
    official = dsprites.dsprites(source="auto", data_dir=tmp_path, factor_sizes=SIZES,
                                 file_checks=checks_for(path))
    assert official.source == "official" and official.describe()["file"] == str(path.resolve())
    procedural = dsprites.dsprites(source="procedural", factor_sizes=SIZES)
    assert torch.equal(all_observations(official), all_observations(procedural))


def test_cache_is_reused_and_survives_nothing_stale(tmp_path):
    path = fixtures.write_dsprites_npz(tmp_path / dsprites.NPZ_NAME, SIZES)
    kwargs = dict(source="official", path=path, factor_sizes=SIZES, file_checks=checks_for(path))
    first = dsprites.dsprites(**kwargs)
    cache = first.describe()["cache"]
    stamp = (tmp_path / "cache").joinpath(cache.rsplit("/", 1)[1]).stat().st_mtime_ns
    second = dsprites.dsprites(**kwargs)
    assert second.describe()["cache"] == cache
    assert (tmp_path / "cache").joinpath(cache.rsplit("/", 1)[1]).stat().st_mtime_ns == stamp
    # A different file under the same name rebuilds the cache.
    fixtures.write_dsprites_npz(path, SIZES, imgs=np.zeros((96, 64, 64), np.uint8))
    blank = dsprites.dsprites(**{**kwargs, "file_checks": checks_for(path)})
    assert all_observations(blank).max() == 0


def test_published_checksum_mismatch_is_a_hard_failure(tmp_path):
    fixtures.write_dsprites_npz(tmp_path / dsprites.NPZ_NAME, SIZES)
    with pytest.raises(DataError, match="md5 .* expected 7da33b31"):
        dsprites.dsprites(source="official", data_dir=tmp_path, factor_sizes=SIZES)
    assert leftover_caches(tmp_path / "cache") == []


@pytest.mark.parametrize("change, message", [
    ({"imgs": np.zeros((96, 64, 64), np.float32)}, r"imgs\]: shape .* float32, expected"),
    ({"imgs": np.zeros((95, 64, 64), np.uint8)}, r"shape \(95, 64, 64\)"),
    ({"latents_classes": np.zeros((96, 6), np.int64)}, "latents_classes row 1"),
    ({"imgs": np.full((96, 64, 64), 2, np.uint8)}, "values above 1"),
])
def test_malformed_npz_is_one_clear_error_and_leaves_no_cache(tmp_path, change, message):
    path = fixtures.write_dsprites_npz(tmp_path / dsprites.NPZ_NAME, SIZES, **change)
    with pytest.raises(DataError, match=message):
        dsprites.dsprites(source="official", path=path, factor_sizes=SIZES,
                          file_checks=checks_for(path))
    assert leftover_caches(tmp_path / "cache") == []


def test_missing_key_truncated_file_and_missing_file(tmp_path):
    arrays = fixtures.dsprites_arrays(SIZES)
    del arrays["latents_classes"]
    path = tmp_path / dsprites.NPZ_NAME
    np.savez_compressed(path, **arrays)
    with pytest.raises(DataError, match="no array 'latents_classes'"):
        dsprites.dsprites(source="official", path=path, factor_sizes=SIZES,
                          file_checks=checks_for(path))
    fixtures.write_dsprites_npz(path, SIZES)
    truncate(path, 0.6)
    with pytest.raises(DataError, match="truncated"):
        dsprites.dsprites(source="official", path=path, factor_sizes=SIZES,
                          file_checks=checks_for(path))
    hdf5 = truncate(fixtures.write_dsprites_hdf5(tmp_path / dsprites.HDF5_NAME, SIZES), 0.5)
    with pytest.raises(DataError, match="not a readable HDF5 file"):
        dsprites.dsprites(source="official", path=hdf5, factor_sizes=SIZES,
                          file_checks=checks_for(hdf5))
    with pytest.raises(DataError, match="source .official. but no dsprites_.*npz or .*hdf5 in the data directory"):
        dsprites.dsprites(source="official", data_dir=tmp_path / "empty")
    assert leftover_caches(tmp_path / "cache") == []


def test_bad_source_and_factor_shape_are_config_errors():
    with pytest.raises(ConfigError, match="dataset.source = 'file' is not accepted; expected"):
        dsprites.dsprites(source="file")
    data = dsprites.dsprites(source="procedural")
    with pytest.raises(ConfigError, match=r"expected \(n, 5\)"):
        data.observations_from_factors(torch.zeros(2, 6, dtype=torch.int64))
