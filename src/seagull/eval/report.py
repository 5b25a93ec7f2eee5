"""Write an evaluation report: ``report.json``, ``report.md`` and PNG plots (matplotlib, Agg).

Synthetic/protocol reports get a scatter of predicted vs labelled quality per predictor, the
quality-level confusion matrix and per-type F1 bars; suite reports get a bar chart of their
main columns.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..fileio import atomic_write_text
from ..labels import QUALITY_LEVELS
from . import agreement as M
from .baselines import BASELINE_COLUMNS, baseline_rows
from .pairs import SYNTHETIC_KEYS, PairSummary, pair_tables
from .predictions import SamplePrediction
from .protocol import (
    COVERAGE_WARN,
    MAIN_COLUMNS,
    PredictorScores,
    RoiLabel,
    coverage_notes,
    main_row,
    markdown_table,
    pair_up,
    text_table,
    type_row,
)
from .suites import SuiteResult

TYPE_COLUMNS = ["predictor", *M.TYPE_CLASSES, "average"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def _clean(v: Any) -> Any:
    if isinstance(v, float):
        return None if math.isnan(v) or math.isinf(v) else v
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


def write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(_clean(data), indent=2, default=_json_default))


# --------------------------------------------------------------------------- protocol report
def protocol_tables(scores: Sequence[PredictorScores]) -> tuple[str, str]:
    """(main table with a line under it for each predictor of low coverage, per-type F1 table) as
    fixed-width text."""
    return (
        "\n".join([text_table(MAIN_COLUMNS, [main_row(s) for s in scores]), *coverage_notes(scores)]),
        text_table(TYPE_COLUMNS, [type_row(s) for s in scores]),
    )


def write_protocol_report(
    out_dir: Path,
    scores: Sequence[PredictorScores],
    labels: Sequence[RoiLabel],
    predictions: dict[str, dict[str, SamplePrediction]],
    info: dict[str, Any],
    pairs: dict[str, PairSummary] | None = None,
) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = {"info": {**info, "coverage_threshold": COVERAGE_WARN}, "predictors": [s.to_dict() for s in scores]}
    if pairs:
        doc["pair_accuracy"] = {name: p.to_dict() for name, p in pairs.items()}
    write_json(out_dir / "report.json", doc)
    plots = [
        plot_quality_scatter(out_dir / "scatter_quality.png", labels, predictions),
        plot_type_f1(out_dir / "type_f1.png", scores),
    ]
    for s in scores:
        if "quality" in s.confusion:
            plots.append(
                plot_confusion(
                    out_dir / f"confusion_quality_{s.name}.png",
                    s.confusion["quality"],
                    QUALITY_LEVELS,
                    s.name,
                )
            )
    plots = [p for p in plots if p is not None]
    md = [
        f"# Evaluation report: {info.get('suite', 'synthetic')}",
        "",
        _info_lines(info),
        "",
        "Columns: n = labelled ROIs the quality columns use (those the predictor gave a finite quality for);",
        "cov % = share of the labelled ROIs with a usable answer, in the task the predictor covers worst",
        f"(* = under {100 * COVERAGE_WARN:.0f} %: its numbers use only the ROIs it answered);",
        "Q = ROI quality, I = ROI importance (SRCC, PLCC raw and after the 4-parameter logistic, KRCC);",
        "Q lvl acc = exact quality-level accuracy (%); Sev/Type P, R, F1 = sample-average precision, recall, F1 (%)",
        "of (type, severity) pairs and of distortion types, with 'clean' as the set of an undistorted ROI.",
        "",
        markdown_table(MAIN_COLUMNS, [main_row(s) for s in scores]),
        "",
        *[line for note in coverage_notes(scores) for line in (note, "")],
        *severity_section(scores),
        *(pair_section(pairs) if pairs else []),
        "## Per-type F1 (%) (the paper's Table 2 layout)",
        "",
        markdown_table(TYPE_COLUMNS, [type_row(s) for s in scores]),
        "",
        "## Bootstrap 95% intervals (quality SRCC, type F1)",
        "",
        markdown_table(["predictor", "Q SRCC 95% CI", "Type F1 95% CI"], [_ci_row(s) for s in scores]),
        "",
        *baselines_section([s.name for s in scores]),
        "## Plots",
        "",
        *[f"![{p.stem}]({p.name})" for p in plots],
        "",
    ]
    atomic_write_text(out_dir / "report.md", "\n".join(md))
    return [out_dir / "report.json", out_dir / "report.md", *plots]


def severity_section(scores: Sequence[PredictorScores]) -> list[str]:
    """Markdown lines: the severity level of each labelled distortion a predictor names."""

    def pct(v: float) -> str:
        return "-" if math.isnan(v) else f"{100 * v:.1f}"

    rows = [
        [
            s.name,
            str(s.severity_levels["n"]),
            pct(s.severity_levels["exact"]),
            pct(s.severity_levels["within_one"]),
        ]
        for s in scores
        if s.severity_levels.get("n")
    ]
    if not rows:
        return []
    return [
        "## Severity of the distortions a predictor names",
        "",
        "For each labelled distortion whose type the predictor names: is its severity level the label's (exact),",
        "or at most one level off (%)?",
        "",
        markdown_table(["predictor", "named distortions", "exact", "within one level"], rows),
        "",
    ]


def pair_section(pairs: dict[str, PairSummary]) -> list[str]:
    """Markdown lines: within-photo pair accuracy, pooled and per family, strength band and scope."""
    margin = next(iter(pairs.values())).margin
    return [
        f"## Within-photo pair accuracy (label margin {margin:g})",
        "",
        f"Pairs of ROIs of one image whose quality labels differ by at least {margin:g}: share the predictor",
        "orders right (worse ROI rated lower; ties 1/2), with 95% bootstrap intervals over reference photos.",
        "Baselines are ranked by their raw oriented score.",
        "",
        pair_tables(pairs, SYNTHETIC_KEYS, markdown_table, "by {}:"),
        "",
    ]


def baselines_section(names: Sequence[str]) -> list[str]:
    """Markdown lines describing the registered baselines among ``names`` (none: no section)."""
    rows = baseline_rows(names)
    if not rows:
        return []
    return [
        "## Baselines",
        "",
        "What each baseline's raw number is and which way it points (the baseline registry).",
        "",
        markdown_table(BASELINE_COLUMNS, rows),
        "",
    ]


def _ci(ci: dict[str, Any], key: str, pct: bool = False) -> str:
    v = ci.get(key)
    if not v or v[0] is None or (isinstance(v[0], float) and math.isnan(v[0])):
        return "-"
    k = 100 if pct else 1
    return f"[{k * v[0]:.{2 if pct else 3}f}, {k * v[1]:.{2 if pct else 3}f}]"


def _ci_row(s: PredictorScores) -> list[str]:
    return [
        s.name,
        _ci(s.quality.ci, "srcc") if s.quality else "-",
        _ci(s.type_prf.ci, "f1", pct=True) if s.type_prf else "-",
    ]


def _info_lines(info: dict[str, Any]) -> str:
    keep = {k: v for k, v in info.items() if k not in ("failures", "seconds_per_image", "thresholds")}
    lines = [f"- **{k}**: {v}" for k, v in keep.items()]
    if info.get("failures"):
        lines.append(f"- **failures**: {len(info['failures'])} (see report.json)")
    return "\n".join(lines)


def plot_quality_scatter(
    path: Path, labels: Sequence[RoiLabel], predictions: dict[str, dict[str, SamplePrediction]]
) -> Path | None:
    plt = _plt()
    named = []
    for name, preds in predictions.items():
        labs, ps = pair_up(labels, preds)
        pts = [
            (lab.quality, p.quality)
            for lab, p in zip(labs, ps, strict=True)
            if p is not None and p.quality is not None
        ]
        if pts and lab_ok(pts):
            named.append((name, pts))
    if not named:
        return None
    cols = min(4, len(named))
    rows = math.ceil(len(named) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows), squeeze=False)
    for ax, (name, pts) in zip(axes.ravel(), named, strict=False):
        a = np.array(pts, dtype=float)
        ax.scatter(a[:, 1], a[:, 0], s=6, alpha=0.5)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("predicted quality", fontsize=8)
        ax.set_ylabel("label quality", fontsize=8)
    for ax in axes.ravel()[len(named) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def lab_ok(pts: list[tuple[float, float]]) -> bool:
    return any(p[0] is not None for p in pts)


def plot_confusion(path: Path, counts: Sequence[Sequence[int]], classes: Sequence[str], title: str) -> Path:
    plt = _plt()
    m = np.asarray(counts, dtype=float)
    fig, ax = plt.subplots(figsize=(4.2, 3.8))
    ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=45, fontsize=8)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("label")
    ax.set_title(f"quality levels: {title}", fontsize=9)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(j, i, int(m[i, j]), ha="center", va="center", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_type_f1(path: Path, scores: Sequence[PredictorScores]) -> Path | None:
    rows = [s for s in scores if s.type_f1]
    if not rows:
        return None
    plt = _plt()
    classes = list(M.TYPE_CLASSES)
    x = np.arange(len(classes))
    width = 0.8 / len(rows)
    fig, ax = plt.subplots(figsize=(9, 3.6))
    for k, s in enumerate(rows):
        vals = [0.0 if math.isnan(s.type_f1.get(c, float("nan"))) else 100 * s.type_f1[c] for c in classes]
        ax.bar(x + k * width, vals, width, label=s.name)
    ax.set_xticks(x + 0.4 - width / 2, classes, fontsize=8)
    ax.set_ylabel("F1 (%)")
    ax.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- suite report
def fmt_cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return "-" if math.isnan(v) else f"{v:.3f}"
    return str(v)


def suite_tables(res: SuiteResult) -> str:
    parts = [text_table(res.columns, [[fmt_cell(r.get(c)) for c in res.columns] for r in res.rows])]
    for name, (cols, rows) in res.extra_tables.items():
        parts += ["", f"[{name}]", text_table(cols, [[fmt_cell(r.get(c)) for c in cols] for r in rows])]
    return "\n".join(parts)


def write_suite_report(out_dir: Path, res: SuiteResult) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "report.json", res.to_dict())
    plot = plot_suite_bars(out_dir / f"{res.suite}_bars.png", res)
    md = [
        f"# Evaluation report: {res.suite}",
        "",
        _info_lines(res.info),
        "",
        markdown_table(res.columns, [[fmt_cell(r.get(c)) for c in res.columns] for r in res.rows]),
        "",
    ]
    for name, (cols, rows) in res.extra_tables.items():
        md += [f"## {name}", "", markdown_table(cols, [[fmt_cell(r.get(c)) for c in cols] for r in rows]), ""]
    md += ["## Notes", "", *[f"- {n}" for n in res.notes], ""]
    md += baselines_section([r["predictor"] for r in res.rows])
    if plot:
        md += [f"![{plot.stem}]({plot.name})", ""]
    atomic_write_text(out_dir / "report.md", "\n".join(md))
    return [out_dir / "report.json", out_dir / "report.md"] + ([plot] if plot else [])


def plot_suite_bars(path: Path, res: SuiteResult) -> Path | None:
    num_cols = [c for c in res.columns[1:] if any(isinstance(r.get(c), float) for r in res.rows) and c != "n"]
    if not num_cols:
        return None
    plt = _plt()
    x = np.arange(len(res.rows))
    width = 0.8 / len(num_cols)
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(res.rows)), 3.6))
    for k, c in enumerate(num_cols):
        vals = [r.get(c) if isinstance(r.get(c), float) else 0.0 for r in res.rows]
        ax.bar(x + k * width, vals, width, label=c)
    ax.set_xticks(x + 0.4 - width / 2, [r["predictor"] for r in res.rows], rotation=30, fontsize=8)
    ax.axhline(0.5, color="grey", lw=0.5, ls="--")
    ax.legend(fontsize=7, ncol=3)
    ax.set_title(res.suite)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
