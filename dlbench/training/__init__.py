"""The training engine every SGD-trained plugin uses: stacked solutions, resume, progress, history (protocol 2).

    from dlbench.training import StepBatch, TrainingPlan, train_stack

A plugin provides a `StackProblem` (the stacked network of some solutions and their per-solution loss terms of a
`StepBatch`); `train_stack` trains every solution of a `TrainingPlan` and returns a `TrainingOutcome`. The layers in
`dlbench.training.layers` stack any network of linear and convolutional layers; `dlbench.training.seeds` derives every
seed a stage needs.
"""
from dlbench.training.cache import SolutionCache
from dlbench.training.engine import TrainingOutcome, TrainingPlan, check_batch_size, train_stack
from dlbench.training.problem import (
    ENGINE_PROTOCOL,
    TOTAL,
    AdamSettings,
    OptimizerGroup,
    StackProblem,
    StepBatch,
)
from dlbench.training.seeds import continuation_seed, derived_seed, solution_seed

__all__ = ["ENGINE_PROTOCOL", "TOTAL", "AdamSettings", "OptimizerGroup", "SolutionCache", "StackProblem", "StepBatch",
           "TrainingOutcome", "TrainingPlan", "check_batch_size", "continuation_seed", "derived_seed",
           "solution_seed", "train_stack"]
