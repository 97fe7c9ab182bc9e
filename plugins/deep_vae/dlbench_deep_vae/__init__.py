"""dlbench's deep models as a plugin: the paper's β-VAE and λβ-VAE and disentanglement_lib's zoo, each an objective
over a convolutional VAE, trained as stacks of independent solutions.

For a model of your own: `Objective`, `Axis`, `Setting`, `VAEOutputs` and `model_factory` (see the README's "A deep
model of your own"). Loaded on first use, so registering the plugin does not import torch.
"""
import importlib

_LAZY_NAMES = {"Axis": "dlbench_deep_vae.objective", "Objective": "dlbench_deep_vae.objective",
               "Setting": "dlbench_deep_vae.objective", "VAEOutputs": "dlbench_deep_vae.objective",
               "model_factory": "dlbench_deep_vae.factory"}
__all__ = list(_LAZY_NAMES)


def __getattr__(name: str):
    if name not in _LAZY_NAMES:
        raise AttributeError(f"module 'dlbench_deep_vae' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY_NAMES[name]), name)
    globals()[name] = value
    return value
