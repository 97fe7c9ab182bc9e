import json

from dataset_test_helpers import leftover_caches

from dlbench.datasets import dsprites, fixtures


def run(argv):
    from dlbench.cli import main

    return main(argv)


def test_list_info_and_preview(tmp_path, capsys):
    assert run(["data", "list"]) == 0
    assert "mpi3d_realistic" in capsys.readouterr().out
    assert run(["data", "info", "mpi3d_toy", "--source", "procedural"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["factor_sizes"] == [6, 6, 2, 3, 3, 40, 40] and facts["source"] == "procedural"
    out = tmp_path / "preview.png"
    assert run(["data", "preview", "dsprites", "--source", "procedural", "--out", str(out)]) == 0
    from matplotlib.image import imread

    assert imread(out).shape[:2] == (5 * 64, 8 * 64)  # one row per factor


def test_user_mistakes_exit_2_with_one_line(tmp_path, capsys):
    assert run(["data", "info", "celeba"]) == 2
    assert "unknown dataset 'celeba'; available: dsprites" in capsys.readouterr().err
    path = fixtures.write_dsprites_npz(tmp_path / dsprites.NPZ_NAME, (1, 3, 1, 2, 2, 2))
    assert run(["data", "prepare", "dsprites", "--path", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "expected (737280, 64, 64) uint8" in err
    assert leftover_caches(tmp_path / "cache") == []
    assert run(["data", "verify", "shapes3d", "--data-dir", str(tmp_path)]) == 2
    assert "3dshapes.h5" in capsys.readouterr().err


def test_verify_reports_checksums_of_file_and_cache(tmp_path, capsys, monkeypatch):
    path = fixtures.write_mpi3d_npz(tmp_path / "mpi3d_real.npz", (1, 1, 1, 1, 1, 2, 2))
    monkeypatch.setattr("dlbench.datasets.mpi3d.SIZES_BY_COUNT", {4: (1, 1, 1, 1, 1, 2, 2)})
    assert run(["data", "verify", "mpi3d_real", "--path", str(path)]) == 0
    assert "no published checksum to compare" in capsys.readouterr().out
