import argparse

from dlbench.metrics import commands
from dlbench.records import SCHEMA, read_record, write_record


def test_merge_keeps_replaced_results_in_history():
    old = {"mig": {"mig": 0.1, "provenance": {"seed": 0}}, "sap_score": {"sap": 0.2}}
    metrics, history = commands.merge_results(old, [{"metric": "x"}], {"mig": {"mig": 0.3}})
    assert metrics == {"mig": {"mig": 0.3}, "sap_score": {"sap": 0.2}}
    assert history[0] == {"metric": "x"} and history[1]["metric"] == "mig"
    assert history[1]["result"] == old["mig"] and "replaced_at" in history[1]


def test_evaluate_adds_scores_without_retraining(tmp_path, monkeypatch, capsys):
    import dlbench.runner

    record = {"schema": SCHEMA, "run_id": "r", "model": {"name": "m"}, "dataset": {"name": "d"}, "seed": 5,
              "metrics": {"mig": {"mig": 0.1}}, "config": "", "operative_config": ""}
    write_record(tmp_path, record)
    calls = []
    monkeypatch.setattr(dlbench.runner, "load_run", lambda run_dir, **options: (read_record(run_dir), "model", "data"))
    monkeypatch.setattr(dlbench.runner, "evaluate_metrics",
                        lambda model, dataset, names, seed: calls.append((names, seed)) or
                        {name: {"score": 0.5, "provenance": {"mode": "fast"}} for name in names})
    parser = argparse.ArgumentParser()
    commands.add_commands(parser.add_subparsers())
    args = parser.parse_args(["evaluate", str(tmp_path), "--metrics", "mig", "dci"])
    assert args.handler(args) == 0
    updated = read_record(tmp_path)
    assert calls == [(["mig", "dci"], 5)]
    assert updated["metrics"]["dci"]["score"] == 0.5 and updated["metrics"]["mig"]["provenance"]["mode"] == "fast"
    assert updated["metrics_history"][0]["result"] == {"mig": 0.1}
    assert "dci: {'score': 0.5}" in capsys.readouterr().out
