import json

import numpy as np
import pytest
import torch
from metric_test_helpers import ContinuousDataset, GridDataset, LinearModel

from dlbench.errors import ConfigError, DataError
from dlbench.metrics import register_metrics
from dlbench.metrics.mig import MIG
from dlbench.metrics.sampling import draw_splits
from dlbench.metrics.sap import SAPScore

SMALL = {"mig": {"num_train": 200}, "i_m": {"num_train": 200}, "unsupervised": {"num_train": 200},
         "sap_score": {"num_train": 200, "num_test": 100}, "dci": {"num_train": 200, "num_test": 100, "mode": "fast"},
         "modularity_explicitness": {"num_train": 200, "num_test": 100},
         "factor_vae_score": {"num_train": 50, "num_eval": 30, "num_variance_estimate": 200},
         "beta_vae_score": {"num_train": 50, "num_eval": 30}}


def test_paper_protocol_draws_distinct_images_split_train_test():
    dataset = GridDataset((6, 5, 4, 3))
    train, test = draw_splits(LinearModel(np.eye(4)), dataset, protocol="paper", sizes=(250, 110),
                              generator=torch.Generator().manual_seed(0))
    both = torch.cat([train.factors, test.factors])
    assert len(train.factors) == 250 and len(test.factors) == 110
    assert len(torch.unique(both, dim=0)) == 360  # without replacement
    assert torch.equal(train.codes, train.factors.to(torch.float64))
    again = draw_splits(LinearModel(np.eye(4)), dataset, protocol="paper", sizes=(250,),
                        generator=torch.Generator().manual_seed(0))[0]
    assert torch.equal(again.factors, train.factors)  # a metric without test split sees the same train images


def test_paper_protocol_refuses_what_it_cannot_do():
    with pytest.raises(DataError, match="draws 200 distinct images but 'grid' has only 120"):
        draw_splits(LinearModel(np.eye(4)), GridDataset(), protocol="paper", sizes=(150, 50),
                    generator=torch.Generator())
    with pytest.raises(ConfigError,
                       match="protocol 'paper' needs a dataset with a discrete factor grid.*use protocol 'dlib'"):
        MIG()(LinearModel(np.eye(3)), ContinuousDataset(), generator=torch.Generator())


def test_dlib_protocol_on_continuous_factors_discretises_and_says_so():
    result = MIG(protocol="dlib", num_train=600, random_seed=4)(
        LinearModel(np.eye(3)), ContinuousDataset(), generator=torch.Generator())
    assert result["mig"] > 0.5
    assert result["provenance"]["factor_discretisation"] == "continuous factors, 20 equal-width histogram bins"
    sap = SAPScore(protocol="dlib", num_train=600, num_test=10)(
        LinearModel(np.eye(3)), ContinuousDataset(), generator=torch.Generator().manual_seed(2))
    assert sap["sap"] > 0.9 and sap["provenance"]["continuous_factors"] is True and sap["provenance"]["seed"] == 2
    with pytest.raises(ConfigError, match="continuous_factors = False needs discrete factors"):
        SAPScore(protocol="dlib", num_train=50, num_test=10, continuous_factors=False)(
            LinearModel(np.eye(3)), ContinuousDataset(), generator=torch.Generator())


@pytest.mark.parametrize("name", sorted(SMALL))
def test_every_registered_metric_scores_single_and_batched_models(name):
    factory = register_metrics()[name]
    protocol = {} if name in ("factor_vae_score", "beta_vae_score") else {"protocol": "dlib"}
    metric = factory(random_seed=0, **protocol, **SMALL[name])
    dataset = GridDataset((5, 6, 4))
    single = metric(LinearModel(np.eye(3)), dataset, generator=torch.Generator())
    batched = metric(LinearModel(np.eye(3), batched=True), dataset, generator=torch.Generator())
    json.dumps(single, allow_nan=False)
    # Without a bound random_seed the run's generator seeds it, whatever its size.
    assert factory(**protocol, **SMALL[name])(LinearModel(np.eye(3)), dataset, generator=torch.Generator())
    assert metric.name == name and single["provenance"]["metric"] == name and single["provenance"]["seed"] == 0
    assert {"dlbench_version", "computed_at", "protocol"} <= set(single["provenance"])
    scores = [key for key in single if key != "provenance"]
    assert scores and all(len(batched[key]) == 2 for key in scores)
    # The second solution's codes are the first's doubled, which no score may notice but KL.
    for key in scores:
        assert np.allclose(batched[key][0], single[key]) and np.allclose(batched[key][1], single[key], atol=0.02), key


def test_bad_settings_are_refused_in_one_line():
    with pytest.raises(ConfigError, match=r"mig.protocol = 'paperz' is not accepted; expected one of 'paper', 'dlib'"):
        MIG(protocol="paperz")
    with pytest.raises(ConfigError,
                       match=r"sap_score.mode = 'quick' is not accepted; expected one of 'reference', 'fast'"):
        SAPScore(mode="quick")
    with pytest.raises(ConfigError, match=r"mig.num_train = 0 is not accepted; expected an integer >= 2"):
        MIG(num_train=0)
