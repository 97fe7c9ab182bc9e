"""Re-scoring a finished run: merging results into the record, without refitting, under the record's rules."""
import numpy as np

from dlbench import records
from dlbench.cli import main
from dlbench.evaluation import merge_results


def test_merge_keeps_replaced_results_in_history():
    old = {"mig": {"mig": 0.1, "provenance": {"seed": 0}}, "sap_score": {"sap": 0.2}}
    metrics, history = merge_results(old, [{"metric": "x"}], {"mig": {"mig": 0.3}})
    assert metrics == {"mig": {"mig": 0.3}, "sap_score": {"sap": 0.2}}
    assert history[0] == {"metric": "x"} and history[1]["metric"] == "mig"
    assert history[1]["result"] == old["mig"] and "replaced_at" in history[1]


def test_evaluate_adds_scores_without_retraining(tmp_path, tiny_linear_gin, monkeypatch, capsys):
    from dlbench_linear_gaussian import solvers

    out = tmp_path / "runs"
    assert main(["run", str(tiny_linear_gin), "--out", str(out), "--quiet", "-p", "evaluation.metrics = ['mig']",
                 "-p", "mig.protocol = 'dlib'", "-p", "mig.num_train = 300"]) == 0
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    before = records.read_record(run_dir)

    def must_not_fit(*args, **kwargs):
        raise AssertionError("evaluate refitted the model")

    monkeypatch.setattr(solvers, "fixed_point", must_not_fit)
    assert main(["evaluate", str(run_dir), "--metrics", "mig", "unsupervised", "-p", "mig.num_train = 400",
                 "-p", "unsupervised.protocol = 'dlib'", "-p", "unsupervised.num_train = 300"]) == 0
    updated = records.read_record(run_dir)
    assert np.array(updated["metrics"]["unsupervised"]["active_units"]).shape == (1, 2, 2, 3)
    assert updated["metrics"]["mig"]["provenance"]["num_train"] == 400
    assert updated["metrics_history"][0]["result"] == before["metrics"]["mig"]
    assert updated["metrics"]["exact"] == before["metrics"]["exact"]
    printed = capsys.readouterr().out
    assert "unsupervised.active_units" in printed and "fixed_point" in printed  # the run's summary table
