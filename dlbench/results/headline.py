"""The headline metrics every output of the results store shows: which scores answer each alias, which direction
is better, and the unit of each score."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HeadlineMetric:
    alias: str
    label: str
    scores: tuple[str, ...]  # candidate score names; a solution's first present one is its value
    higher_is_better: bool


# The one table of headline metrics for queries, tables, figures and the report.
HEADLINE_METRICS = {metric.alias: metric for metric in (
    HeadlineMetric("mig", "MIG", ("mig.mig",), True),
    HeadlineMetric("sap", "SAP", ("sap_score.sap", "sap"), True),
    HeadlineMetric("i_m", "I_m", ("i_m.i_m", "i_m"), True),
    HeadlineMetric("reconstruction", "reconstruction", ("training.reconstruction", "nll"), False),
)}

# What each headline score is measured in. MIG and SAP are normalised gaps; the deep models' reconstruction is the
# training loss per image (summed over pixels), the linear model's the population negative log-likelihood.
SCORE_UNITS = {
    "mig.mig": "0–1", "sap_score.sap": "0–1", "sap": "0–1", "i_m.i_m": "nats", "i_m": "nats", "nll": "nats",
    "training.reconstruction": "nats per image",
}
# A deep model trained with the l2 likelihood reports its squared error per image as its reconstruction.
LIKELIHOOD_UNITS = {"l2": "squared error per image"}


def score_unit(score: str, likelihood: str | None = None) -> str | None:
    """The unit of `score` (None: not a headline score), given the likelihood the run was trained with."""
    if score == "training.reconstruction" and likelihood in LIKELIHOOD_UNITS:
        return LIKELIHOOD_UNITS[likelihood]
    return SCORE_UNITS.get(score)
