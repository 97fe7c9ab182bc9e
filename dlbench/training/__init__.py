"""The training engine every SGD-trained plugin uses: stacked solutions, resume, progress, history.

    from dlbench.training import TrainingPlan, train_stack

A plugin provides a `StackProblem` (the stacked network of some solutions and their per-solution loss
terms); `train_stack` trains every solution of a `TrainingPlan` and returns a `TrainingOutcome`.
"""
from dlbench.training.cache import SolutionCache
from dlbench.training.engine import TOTAL, StackProblem, TrainingOutcome, TrainingPlan, derived_seed, train_stack

__all__ = ["TOTAL", "SolutionCache", "StackProblem", "TrainingOutcome", "TrainingPlan", "derived_seed",
           "train_stack"]
