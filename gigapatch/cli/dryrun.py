"""What ``gigapatch extract --dry-run`` prints: an :class:`~gigapatch.engine.Estimate` as a
table per slide, totals, and the estimated store size and time."""

from __future__ import annotations

from gigapatch.cli.tables import format_table, human_seconds
from gigapatch.engine import Estimate
from gigapatch.plan import PatchPlan
from gigapatch.store import describe_plan
from gigapatch.store.summary import human_bytes

__all__ = ["estimate_lines", "print_estimate"]


def _mpp(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def estimate_lines(est: Estimate, plan: PatchPlan, output: str | None = None, *,
                   done: int = 0) -> list[str]:
    """The lines ``--dry-run`` prints for ``est`` of ``plan`` (to be written to ``output``)."""
    h, w, c = est.patch_shape
    where = f"would write {output}" if output else "no output given"
    lines = [f"dry run: nothing written ({where}); {describe_plan(plan.params())}", ""]
    labelled = bool(plan.slide_labels)
    header = ["slide", *(["class"] if labelled else []), "level", "level mpp", "patch mpp",
              "factor", "tissue", "patches"]
    rows = [
        [r.name, *([r.label or "-"] if labelled else []), str(r.level), _mpp(r.level_mpp),
         _mpp(r.patch_mpp), f"{r.factor:g}", "-" if r.tissue is None else f"{r.tissue:.1%}",
         f"{r.patches:,}"]
        for r in est.slides
    ]
    total = ["total", *([""] if labelled else []), "", "", "", "", "", f"{est.patches:,}"]
    lines += format_table(header, [*rows, total], left=2 if labelled else 1)
    lines.append("")
    lines.append(f"patches {est.patches:,} of {h}x{w}x{c} {est.dtype} from {len(est.slides)} "
                 f"slide(s), {est.tile_decodes:,} tile decodes"
                 + (f"; {done:,} already done (--resume)" if done else ""))
    if est.per_class:
        lines.append("classes " + ", ".join(f"{name} {n:,}" for name, n in est.per_class.items()))
    if not est.patches:
        lines.append("store   nothing to write: the plan holds no patches")
        return lines
    lines.append(
        f"store   ~{human_bytes(est.bytes)} (estimate: {est.codec} shrinks the "
        f"{human_bytes(est.pixel_bytes)} of pixels {est.ratio:.2f}x; {est.sample} sampled "
        "patches encoded)"
    )
    writing = "incl. writing, timed in the output's folder" if est.writing else (
        "writing not timed: give -o")
    lines.append(
        f"time    ~{human_seconds(est.seconds)} with {est.workers} worker(s) (estimate from "
        f"{est.sample} sampled patches, measured on this machine in {est.sample_seconds:.1f}s "
        f"with warm-up runs; {writing})"
    )
    return lines


def print_estimate(est: Estimate, plan: PatchPlan, output: str | None = None, *,
                   done: int = 0) -> None:
    """Print :func:`estimate_lines`."""
    print("\n".join(estimate_lines(est, plan, output, done=done)))
