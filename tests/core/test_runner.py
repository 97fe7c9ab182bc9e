import json

import numpy as np
import pytest
import torch
from cli_helpers import reproducible_part

from dlbench import FitContext, records
from dlbench.cli import main
from dlbench.evaluation import load_run
from dlbench.runner import run_experiment


def run_dir_of(out):
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    return run_dir


def test_run_writes_a_complete_record(tmp_path, tiny_linear_gin, capsys):
    out = tmp_path / "runs"
    assert main(["run", str(tiny_linear_gin), "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    run_dir = run_dir_of(out)
    record = json.loads((run_dir / "record.json").read_text())
    assert record["schema"] == "dlbench.run/3"
    assert record["state_digest"] == records.file_digest(run_dir / "state.npz")  # the state is bound to its record
    assert record["model"]["name"] == "linear_gaussian_vae"
    assert record["model"]["distribution"] == "dlbench-linear-gaussian"
    assert record["model"]["hyperparameters"]["betas"] == [1.0, 4.0]
    assert record["dataset"]["name"] == "linear_gaussian" and record["dataset"]["source"] == "synthetic"
    assert record["solution_axes"] == {"solver": ["fixed_point"], "beta": [1.0, 4.0],
                                       "lambda": [0.0, 2.0], "start": [0, 1, 2]}
    sap = np.array(record["metrics"]["exact"]["values"]["sap"])
    assert sap.shape == (1, 2, 2, 3)
    assert record["environment"]["packages"]["torch"] == torch.__version__.split("+")[0] or \
        record["environment"]["packages"]["torch"].startswith(torch.__version__.split("+")[0])
    assert "linear_gaussian_vae.num_starts = 3" in record["operative_config"]
    assert (run_dir / "operative_config.gin").read_text() == record["operative_config"]
    state = records.load_state(run_dir / "state.npz")
    assert state["B"].shape == (1, 2, 2, 3, 4, 12)
    assert not list(out.glob("*.partial"))
    assert sorted(p.name for p in run_dir.iterdir()) == ["operative_config.gin", "record.json",
                                                         "state.npz"]
    # the summary table: one row per (solver, beta, lambda) with the mean over starts
    assert "fixed_point" in printed and "no_minimiser" in printed and record["run_id"] in printed


def test_same_seed_is_bit_identical_and_another_seed_differs(tmp_path, tiny_linear_gin):
    first = run_experiment([tiny_linear_gin], out_dir=tmp_path / "a", progress=False)
    second = run_experiment([tiny_linear_gin], out_dir=tmp_path / "b", progress=False)
    other = run_experiment([tiny_linear_gin], out_dir=tmp_path / "c", seed=1, progress=False)
    state_1 = records.load_state(first.run_dir / "state.npz")
    state_2 = records.load_state(second.run_dir / "state.npz")
    state_3 = records.load_state(other.run_dir / "state.npz")
    assert all(torch.equal(state_1[k], state_2[k]) for k in ("A", "B", "sigma_z", "sigma_w"))
    assert not torch.equal(state_1["B"], state_3["B"])
    assert other.run_dir.name != first.run_dir.name


def test_rerun_reuses_the_finished_record(tmp_path, tiny_linear_gin, capsys):
    out = tmp_path / "runs"
    assert main(["run", str(tiny_linear_gin), "--out", str(out), "--quiet"]) == 0
    before = (run_dir_of(out) / "record.json").read_bytes()
    assert main(["run", str(tiny_linear_gin), "--out", str(out), "--quiet"]) == 0
    assert "already finished" in capsys.readouterr().out
    assert (run_dir_of(out) / "record.json").read_bytes() == before


def test_interrupted_run_leaves_no_record_and_resumes_from_checkpoints(
        tmp_path, tiny_linear_gin, monkeypatch, capsys):
    from dlbench_linear_gaussian import solvers

    out = tmp_path / "runs"
    finished = run_experiment([tiny_linear_gin], out_dir=tmp_path / "reference", progress=False)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    real_fixed_point = solvers.fixed_point
    monkeypatch.setattr(solvers, "fixed_point", interrupted)
    assert main(["run", str(tiny_linear_gin), "--out", str(out), "--quiet"]) == 130
    assert "rerun the same command to resume" in capsys.readouterr().err
    assert not list(out.rglob("record.json"))

    # A checkpoint left by an earlier attempt is used instead of solving again.
    (partial,) = out.glob("*.partial")
    checkpoint = records.load_state(finished.run_dir / "state.npz")
    marked = {k: v.reshape(-1, *v.shape[4:]) for k, v in checkpoint.items()}
    marked["iterations"] = torch.full_like(marked["iterations"], 777)
    FitContext("cpu", 0, partial / "checkpoints").save_checkpoint("solver_fixed_point", marked)
    monkeypatch.setattr(solvers, "fixed_point", real_fixed_point)
    assert main(["run", str(tiny_linear_gin), "--out", str(out), "--quiet"]) == 0
    record = records.read_record(run_dir_of(out))
    assert set(np.array(record["metrics"]["exact"]["values"]["iterations"]).ravel()) == {777}
    assert not list(out.glob("*.partial"))


def test_a_run_interrupted_after_its_fit_resumes_at_evaluation_with_the_same_record(
        tmp_path, tiny_linear_gin, monkeypatch):
    """The fitted model is restored from state.npz, which holds its solutions but not what fit learnt from the
    dataset (the instance that exact metrics need, the settings resolved from n): the record must not depend on it."""
    from dlbench import evaluation

    bindings = ["evaluation.metrics = ['mig']", "mig.protocol = 'dlib'", "mig.num_train = 300"]
    reference = run_experiment([tiny_linear_gin], bindings, out_dir=tmp_path / "reference", progress=False)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    out = tmp_path / "runs"
    with monkeypatch.context() as patch:
        patch.setattr(evaluation, "evaluate_metrics", interrupted)
        with pytest.raises(KeyboardInterrupt):
            run_experiment([tiny_linear_gin], bindings, out_dir=out, progress=False)
    (partial,) = out.glob("*.partial")
    assert (partial / "state.npz").is_file() and not (partial / "record.json").exists()
    resumed = run_experiment([tiny_linear_gin], bindings, out_dir=out, progress=False)
    assert resumed.record["fit"]["segments"] == records.read_record(resumed.run_dir)["fit"]["segments"]
    assert len(resumed.record["fit"]["segments"]) == 1  # evaluation resumed; the fit did not run again
    assert reproducible_part(resumed.record) == reproducible_part(reference.record)
    assert resumed.record["model"]["hyperparameters"]["max_half_steps"] == 600


def test_a_finished_fit_whose_fit_json_holds_no_state_digest_is_fitted_again_from_its_checkpoints(
        tmp_path, tiny_linear_gin, monkeypatch):
    """A partial run left by a dlbench before state digests: its state.npz is bound to nothing, so it is not used."""
    from dlbench import evaluation
    from dlbench.runner import FIT_FILE

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(evaluation, "evaluate_metrics", interrupted)
        with pytest.raises(KeyboardInterrupt):
            run_experiment([tiny_linear_gin], out_dir=tmp_path, progress=False)
    (partial,) = tmp_path.glob("*.partial")
    fit = json.loads((partial / FIT_FILE).read_text())
    del fit["state_digest"]
    (partial / FIT_FILE).write_text(json.dumps(fit))
    resumed = run_experiment([tiny_linear_gin], out_dir=tmp_path, progress=False)
    assert [segment["outcome"] for segment in resumed.record["fit"]["segments"]] == ["finished", "finished"]
    assert resumed.record["state_digest"] == records.file_digest(resumed.run_dir / "state.npz")


def _finished_segments(fit: dict) -> dict:
    return {**fit, "segments": [{**fit["segments"][0], "seconds": "soon"}]}


@pytest.mark.parametrize("file_name, damage", [
    ("fit.json", lambda fit: []),
    ("fit.json", lambda fit: 5),
    ("fit.json", lambda fit: {**fit, "segments": 3}),
    ("fit.json", lambda fit: {**fit, "segments": [1]}),
    ("fit.json", _finished_segments),
    ("fit.json", lambda fit: {**fit, "model_scores": []}),
    ("fit.json", lambda fit: {**fit, "telemetry": "fast"}),
    ("metrics.partial.json", lambda metrics: []),
    ("metrics.partial.json", lambda metrics: {"mig": 5}),
], ids=["fit_list", "fit_number", "segments_number", "segment_number", "segment_seconds", "model_scores_list",
        "telemetry_text", "metrics_list", "metric_number"])
def test_a_damaged_progress_file_of_a_partial_run_is_work_done_again_not_a_crash(tmp_path, tiny_linear_gin,
                                                                                 monkeypatch, file_name, damage):
    from dlbench import evaluation

    bindings = ["evaluation.metrics = ['mig', 'i_m']", "mig.protocol = 'dlib'", "mig.num_train = 300",
                "i_m.protocol = 'dlib'", "i_m.num_train = 300"]
    real_evaluate = evaluation.evaluate_metrics

    def interrupted_after_the_first_metric(*args, on_result):  # mig is scored and kept in metrics.partial.json
        def keep_then_stop(name, result):
            on_result(name, result)
            raise KeyboardInterrupt
        return real_evaluate(*args, on_result=keep_then_stop)

    with monkeypatch.context() as patch:
        patch.setattr(evaluation, "evaluate_metrics", interrupted_after_the_first_metric)
        with pytest.raises(KeyboardInterrupt):
            run_experiment([tiny_linear_gin], bindings, out_dir=tmp_path, progress=False)
    (partial,) = tmp_path.glob("*.partial")
    path = partial / file_name
    path.write_text(json.dumps(damage(json.loads(path.read_text()))))
    resumed = run_experiment([tiny_linear_gin], bindings, out_dir=tmp_path, progress=False)
    assert set(resumed.record["metrics"]) >= {"mig", "i_m"}
    assert records.read_record(resumed.run_dir) == resumed.record


@pytest.mark.parametrize("binding, listed", [
    ("model.name = 'no_such_model'",
     "unknown model 'no_such_model'; available: annealed_vae, beta_tc_vae, beta_vae, dip_vae_i, dip_vae_ii, "
     "factor_vae, lambda_beta_vae, linear_gaussian_vae"),
    ("dataset.name = 'no_such_data'", "unknown dataset 'no_such_data'; available: "),
    ("evaluation.metrics = ['no_such_metric']", "unknown metric 'no_such_metric'; available: "),
])
def test_unknown_names_list_the_available_ones(tmp_path, tiny_linear_gin, capsys, binding, listed):
    out = tmp_path / "runs"
    assert main(["run", str(tiny_linear_gin), "-p", binding, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert listed in err and err.count("\n") == 0
    assert not list(out.rglob("record.json"))


def test_cuda_without_a_gpu_is_a_user_error(tmp_path, tiny_linear_gin, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert main(["run", str(tiny_linear_gin), "--device", "cuda", "--out", str(tmp_path)]) == 2
    assert "no CUDA device is available" in capsys.readouterr().err


def test_debug_shows_the_traceback(tmp_path, capsys):
    assert main(["--debug", "run", str(tmp_path / "missing.gin")]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_load_run_restores_the_fitted_model(tmp_path, tiny_linear_gin):
    result = run_experiment([tiny_linear_gin], out_dir=tmp_path, progress=False)
    record, model, dataset = load_run(result.run_dir, device="cpu")
    assert record["run_id"] == result.run_dir.name
    _, observations = dataset.sample(5, torch.Generator().manual_seed(0))
    saved_B = records.load_state(result.run_dir / "state.npz")["B"]
    assert torch.equal(model.representation(observations), observations @ saved_B.mT)


def test_evaluate_adds_scores_to_a_real_run_and_keeps_the_old_ones(tmp_path, tiny_linear_gin):
    out = tmp_path / "runs"
    assert main(["run", str(tiny_linear_gin), "--out", str(out), "--quiet",
                 "-p", "evaluation.metrics = ['mig']", "-p", "mig.protocol = 'dlib'",
                 "-p", "mig.num_train = 500", "-p", "i_m.protocol = 'dlib'",
                 "-p", "i_m.num_train = 500"]) == 0
    run_dir = run_dir_of(out)
    before = records.read_record(run_dir)
    assert main(["evaluate", str(run_dir), "--metrics", "mig", "i_m", "--device", "cpu"]) == 0
    after = records.read_record(run_dir)
    assert after["metrics"]["exact"] == before["metrics"]["exact"]
    assert np.array(after["metrics"]["i_m"]["i_m"]).shape == (1, 2, 2, 3)
    assert after["metrics_history"][0]["metric"] == "mig"
    assert after["metrics_history"][0]["result"] == before["metrics"]["mig"]
    # Same seed, same samples: re-scoring reproduces the score exactly.
    assert after["metrics"]["mig"]["mig"] == before["metrics"]["mig"]["mig"]
    # With no --metrics it re-scores what the record has, never the model's exact scores.
    assert main(["evaluate", str(run_dir), "--device", "cpu"]) == 0
    assert len(records.read_record(run_dir)["metrics_history"]) == 3


METRIC = ["-p", "evaluation.metrics = ['mig']", "-p", "mig.protocol = 'dlib'", "-p", "mig.num_train = 300"]


def test_a_changed_metric_setting_rescores_the_saved_fit_without_refitting(tmp_path, tiny_linear_gin, monkeypatch,
                                                                          capsys):
    from dlbench_linear_gaussian import solvers

    out = tmp_path / "runs"
    assert main(["run", str(tiny_linear_gin), "--out", str(out), "--quiet", *METRIC]) == 0
    first = records.read_record(run_dir_of(out))

    def must_not_fit(*args, **kwargs):
        raise AssertionError("the model was fitted again for a metric setting")

    monkeypatch.setattr(solvers, "fixed_point", must_not_fit)
    assert main(["run", str(tiny_linear_gin), "--out", str(out), "--quiet", *METRIC,
                 "-p", "mig.num_train = 400"]) == 0
    assert "scored mig on its saved fit" in capsys.readouterr().out
    second = records.read_record(run_dir_of(out))
    assert second["run_id"] == first["run_id"]
    assert second["metrics"]["mig"]["provenance"]["num_train"] == 400
    assert second["metrics_history"][0]["result"] == first["metrics"]["mig"]
    # The same settings again: nothing to do, the record stays byte for byte.
    before = (run_dir_of(out) / "record.json").read_bytes()
    assert main(["run", str(tiny_linear_gin), "--out", str(out), "--quiet", *METRIC,
                 "-p", "mig.num_train = 400"]) == 0
    assert (run_dir_of(out) / "record.json").read_bytes() == before


def test_the_run_id_follows_the_fit_not_the_evaluation(tmp_path, tiny_linear_gin):
    base = run_experiment([tiny_linear_gin], out_dir=tmp_path / "a", progress=False)
    other_metric = run_experiment([tiny_linear_gin], ["evaluation.metrics = ['mig']", "mig.protocol = 'dlib'",
                                                      "mig.num_train = 200"], out_dir=tmp_path / "b", progress=False)
    other_model = run_experiment([tiny_linear_gin], ["linear_gaussian_vae.num_starts = 2"], out_dir=tmp_path / "c",
                                 progress=False)
    assert base.record["run_id"] == other_metric.record["run_id"]
    assert base.record["run_id"] != other_model.record["run_id"]
    assert base.record["run_id"].endswith(base.record["fit_hash"])
    environment = base.record["environment"]
    assert {"cuda", "cudnn", "deterministic_algorithms"} <= set(environment)


def test_a_bad_metric_binding_fails_before_the_fit(tmp_path, tiny_linear_gin, monkeypatch, capsys):
    from dlbench_linear_gaussian import solvers

    def must_not_fit(*args, **kwargs):
        raise AssertionError("the fit started before the metric settings were checked")

    monkeypatch.setattr(solvers, "fixed_point", must_not_fit)
    out = tmp_path / "runs"
    assert main(["run", str(tiny_linear_gin), "--out", str(out), "-p", "evaluation.metrics = ['mig']",
                 "-p", "mig.num_bins = 1"]) == 2
    assert "mig.num_bins = 1 is not accepted; expected an integer >= 2" in capsys.readouterr().err
    assert not list(out.glob("*"))


def test_a_resumed_run_adds_up_its_fit_segments(tmp_path, tiny_linear_gin, monkeypatch):
    from dlbench_linear_gaussian import solvers

    real_fixed_point = solvers.fixed_point

    def slow_then_interrupted(*args, **kwargs):
        import time

        time.sleep(0.3)
        raise KeyboardInterrupt

    monkeypatch.setattr(solvers, "fixed_point", slow_then_interrupted)
    out = tmp_path / "runs"
    assert main(["run", str(tiny_linear_gin), "--out", str(out), "--quiet"]) == 130
    monkeypatch.setattr(solvers, "fixed_point", real_fixed_point)
    assert main(["run", str(tiny_linear_gin), "--out", str(out), "--quiet"]) == 0
    record = records.read_record(run_dir_of(out))
    segments = record["fit"]["segments"]
    assert [s["outcome"] for s in segments] == ["interrupted", "finished"]
    assert segments[0]["seconds"] >= 0.3 and record["fit"]["resumed"]
    assert record["timings"]["fit_seconds"] == pytest.approx(sum(s["seconds"] for s in segments))


def test_a_model_whose_fit_raises_is_named_in_one_line(tmp_path, tiny_linear_gin, monkeypatch, capsys):
    from dlbench_linear_gaussian import solvers

    def broken(*args, **kwargs):
        raise ValueError("the solver met a bug")

    monkeypatch.setattr(solvers, "fixed_point", broken)
    out = tmp_path / "runs"
    assert main(["run", str(tiny_linear_gin), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "model 'linear_gaussian_vae' (plugin linear_gaussian 0.1.0) failed during fit: ValueError: the solver " \
           "met a bug; its partial run is kept in" in err
    assert list(out.glob("*.partial"))


def test_evaluate_takes_metric_bindings_only(tmp_path, tiny_linear_gin, capsys):
    out = tmp_path / "runs"
    assert main(["run", str(tiny_linear_gin), "--out", str(out), "--quiet", *METRIC]) == 0
    before = (run_dir_of(out) / "record.json").read_bytes()
    capsys.readouterr()
    assert main(["evaluate", str(run_dir_of(out)), "-p", "linear_gaussian_vae.num_starts = 9"]) == 2
    err = capsys.readouterr().err
    assert "would change the trained model" in err and err.count("\n") == 1
    assert (run_dir_of(out) / "record.json").read_bytes() == before
