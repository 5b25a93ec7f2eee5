"""Loss curves and metrics: a CSV file (always) and TensorBoard event files (when installed)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any


class MetricsLog:
    """Append-only ``metrics.csv`` (one row per logged step) plus TensorBoard scalars under ``tb/``."""

    FIELDS = (
        "step",
        "epoch",
        "split",
        "loss",
        "lm_loss",
        "aux_loss",
        "rank_heads_loss",
        "rank_lm_loss",
        "lr",
        "images_per_s",
        "elapsed_s",
        "quality_srcc",
        "importance_srcc",
        "type_f1",
        "quality_acc",
        "n_rois",
    )

    def __init__(
        self,
        out_dir: Path,
        tensorboard: bool = True,
        resume_step: int = 0,
        fields: tuple[str, ...] | None = None,
    ) -> None:
        self.fields = fields or self.FIELDS
        self.path = Path(out_dir) / "metrics.csv"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.is_file() and resume_step:
            # Drop rows written after the checkpoint we resume from, so the curve has no duplicates.
            with self.path.open(newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
            self._write_all(rows)
        elif not self.path.is_file() or not resume_step:
            self._write_all([])
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(Path(out_dir) / "tb"), purge_step=resume_step or None)
            except ImportError:  # tensorboard is optional; the CSV is always written
                self.writer = None

    def _write_all(self, rows: list[dict[str, Any]]) -> None:
        with self.path.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.fields)
            w.writeheader()
            w.writerows(rows)

    def log(self, step: int, split: str, **values: Any) -> None:
        row = {"step": step, "split": split, **{k: v for k, v in values.items() if k in self.fields}}
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, fieldnames=self.fields).writerow(row)
        if self.writer is not None:
            for k, v in values.items():
                if isinstance(v, (int, float)) and k not in ("epoch",):
                    self.writer.add_scalar(f"{split}/{k}", v, step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
