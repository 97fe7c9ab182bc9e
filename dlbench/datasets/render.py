"""Shared pieces of the procedural renderers: colours and the label-map colouriser.

A stand-in scene is drawn as a label map (which surface each pixel sees) and a shade map
(Lambert plus ambient light on that surface); colours are applied afterwards, so factors that
only recolour a scene never re-render its geometry.
"""
from __future__ import annotations

import torch


def hsv_to_rgb(hue: torch.Tensor, saturation: float, value: float) -> torch.Tensor:
    """(...,) hues in [0, 1) -> (..., 3) RGB in [0, 1] (the closed form of the HSV hexcone)."""
    offsets = torch.tensor([5.0, 3.0, 1.0], dtype=hue.dtype, device=hue.device)
    k = torch.remainder(offsets + hue.unsqueeze(-1) * 6, 6)
    ramp = torch.clamp(torch.minimum(k, 4 - k), 0, 1)
    return value - value * saturation * ramp


def colourise(labels: torch.Tensor, shade: torch.Tensor, colours: torch.Tensor) -> torch.Tensor:
    """labels (n, H, W) int64 in [0, L), shade (n, H, W) in [0, 1], colours (n, L, 3) in [0, 1]
    -> (n, 3, H, W) uint8: each pixel is its surface's colour times its shade."""
    n, height, width = labels.shape
    per_pixel = colours.transpose(1, 2).gather(
        2, labels.view(n, 1, -1).expand(-1, 3, -1)).view(n, 3, height, width)
    return (per_pixel * shade.unsqueeze(1) * 255 + 0.5).to(torch.uint8)
