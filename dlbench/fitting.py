"""What the core hands a model's `fit`: where it runs, its seed, and the services of a resumable run.

Checkpoints hold whatever a fit needs to continue (nested dicts and lists of tensors of any dtype,
bfloat16 included, Python numbers, strings): they are written with torch.save to a temporary file and
renamed, and read back with `weights_only=True`, so loading one never runs code. The fit's telemetry
(its loss history and notes) travels inside every checkpoint, so a resumed fit keeps the history of
the segments before it.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from dlbench.atomic import atomic_write
from dlbench.config import TrainingSettings
from dlbench.errors import RecordError

CHECKPOINT_FORMAT = "dlbench.checkpoint/1"
_CHECKPOINT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class FitInterrupted(KeyboardInterrupt):
    """An interruption raised on purpose (by the conformance kit) right after a checkpoint was saved."""


class FitContext:
    """A fit's device, seed, progress switch, checkpoint store and telemetry channel.

    Attributes:
        device: the torch device the fit runs on.
        seed: the run's seed; every random draw of the fit derives from it.
        workdir: the directory of the run's checkpoints (kept until the run's record is complete).
        progress: whether to show progress bars.
        training: the core's SGD settings (model.batch_size, model.training_steps, encoder.num_latent,
            model.init_from, model.tensorboard); None fields mean the model's defaults.
        output_dir: where a fit may write files that stay with the finished run (TensorBoard events).
        resumed: True once a checkpoint of an earlier, interrupted attempt was loaded.
    """

    def __init__(self, device: torch.device | str, seed: int, workdir: str | Path, *, progress: bool = True,
                 after_checkpoint: Callable[[], None] | None = None, training: TrainingSettings | None = None,
                 output_dir: str | Path | None = None):
        self.device = torch.device(device)
        self.seed = seed
        self.workdir = Path(workdir)
        self.progress = progress
        self.training = training or TrainingSettings()
        self.output_dir = Path(output_dir) if output_dir is not None else self.workdir
        self.resumed = False
        self.last_checkpoint_progress: float | None = None
        self.telemetry: dict[str, Any] = {"history": [], "notes": {}}
        self._after_checkpoint = after_checkpoint

    def checkpoint_path(self, name: str) -> Path:
        if not _CHECKPOINT_NAME.match(name):
            raise ValueError(f"checkpoint name {name!r}: use letters, digits, '_', '.' and '-'")
        return self.workdir / f"{name}.pt"

    def save_checkpoint(self, name: str, state: Any, *, progress: float | None = None) -> None:
        """Write `state` (with the telemetry so far) atomically as checkpoint `name`, replacing an older one.
        `progress` says how far through its stage a training checkpoint is (0 before the first step, 1 when done), so
        that `dlbench.testing.check_resume` can interrupt a fit mid-training."""
        payload = {"format": CHECKPOINT_FORMAT, "name": name, "state": state, "telemetry": self.telemetry}
        atomic_write(self.checkpoint_path(name), lambda stream: torch.save(payload, stream))
        self.last_checkpoint_progress = progress
        if self._after_checkpoint is not None:
            self._after_checkpoint()

    def load_checkpoint(self, name: str, map_location: torch.device | str = "cpu") -> Any | None:
        """The state of checkpoint `name` (and its telemetry restored), or None when there is none. A corrupt,
        truncated or foreign file is refused with a RecordError naming it. Tensors come to `map_location` (CPU by
        default: generator states must stay there)."""
        path = self.checkpoint_path(name)
        if not path.is_file():
            return None
        try:
            payload = torch.load(path, map_location=map_location, weights_only=True)
        except Exception as exc:  # any failure to read it means the file is not a checkpoint we can trust
            reason = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
            raise RecordError(f"{path}: not a readable dlbench checkpoint ({reason}); delete it to start this fit "
                              "over") from None
        if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT \
                or payload.get("name") != name or not isinstance(payload.get("telemetry"), dict):
            found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
            raise RecordError(f"{path}: a foreign checkpoint (format {found!r}); expected {CHECKPOINT_FORMAT!r} "
                              f"named {name!r}; delete it to start this fit over")
        self.telemetry = payload["telemetry"]
        self.resumed = True
        return payload["state"]

    def log(self, step: int, **values: Any) -> None:
        """Append one point of the training history (JSON-ready values: numbers or per-solution lists)."""
        self.telemetry["history"].append({"step": int(step), **values})

    def note(self, **facts: Any) -> None:
        """Facts about the fit for the record (JSON-ready), e.g. which cached stages it reused."""
        self.telemetry["notes"].update(facts)

    @property
    def history(self) -> list[Mapping[str, Any]]:
        return self.telemetry["history"]
