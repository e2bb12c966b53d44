"""The Markdown report of a reproduction run (see :mod:`gpunet.reproduce`)."""

from __future__ import annotations

from typing import Any

BOOK_DARKNESS, BOOK_SVM = 2225, 9435

# Why a row may sit outside its range, shown only when it does.
EXPLANATIONS = {
    "SVM with today's defaults: not about 9,435": (
        "Explained by the change of scikit-learn's default `gamma` (see Baselines): "
        "with the default of the book's time the same code gives the book's count to "
        "within one image."
    ),
    "η too small (0.001): outside its expected range (final 10% to 40%, rising)": (
        "Investigated: the seed decides it. At η = 0.001 the network first settles on "
        "giving nearly every image the same answer (the book's own run shows this "
        "plateau: epochs 0 to 2 at 1139, 1136, 1135, where 1,135 is the number of 1s in "
        "the test set) and leaves it slowly, at a time set by the initial weights. A "
        "ten-seed run (`gpunet reproduce --only eta-small --seeds 10`, raw results in "
        "`results/eta-small-10-seeds.json`) rose into the range in 7 of 10 seeds (seeds "
        "3 to 9: final 2516, 2134, 1626, 2999, 1339, 1313, 1173, against the book's "
        "2142), while seeds 0, 1 and 2, the three of this table, stayed on their "
        "plateau (1018, 841, 974). float64 gives the same counts as float32 (seed 0, "
        "eight epochs), so this is the dynamics, not rounding."
    ),
    "η too large (100): outside its expected range (every epoch <= 15%)": (
        "Each network is frozen from its first epoch, as the book's is (1009 then 982): "
        "its saturated neurons give every image one or two answers, and its accuracy is "
        "the same count at every epoch. Which answers is chaotic: the run of this page "
        "on 2026-11-24 (another machine, an earlier gpunet) froze at 1032, 1496 and 1032, "
        "this one at 1032, 1503 and 1010. The 15% is gpunet's own line for the book's "
        "\"near chance\", and a network frozen on two digits can pass it by a few "
        "images; none learns."
    ),
    "toy: cross-entropy from w=b=2.0 has output < 0.5 by epoch 100 (η=0.005)": (
        "Not reachable with η = 0.005 and one gradient step per epoch. With x = 1 the "
        "cross-entropy gradients are ∂C/∂w = ∂C/∂b = a − y = a ≤ 1, so each epoch moves "
        "z = w + b down by at most 2η = 0.01; from z = 4 after 100 epochs z ≥ 3 and the "
        "output σ(3) ≥ 0.95. The book's point, no learning slowdown, still shows: the "
        "cross-entropy cost falls at its full rate from the first epoch (about a quarter "
        "of it gone by epoch 100) where the quadratic cost from the same start is flat "
        "(a few percent); and with the quadratic cost's η = 0.15 the cross-entropy neuron "
        "is below 0.5 within 50 epochs (the row below)."
    ),
}


MALFORMED = (KeyError, TypeError, ValueError, IndexError, AttributeError, ZeroDivisionError,
             OverflowError)
"""What rendering results read from a file raises when the file is malformed."""


def check_results(results: Any) -> None:
    """``ValueError`` unless ``results`` has the shape :func:`render_report` reads: a
    ``meta`` object and ``experiments``, each experiment with its ``config`` and
    ``summary`` objects and a list of ``runs``. (Deeper damage, a field of the wrong
    type, surfaces while rendering as one of :data:`MALFORMED`, which the caller turns
    into one error naming the file.)"""
    if not isinstance(results, dict):
        raise ValueError("not a JSON object")
    if not isinstance(results.get("meta"), dict):
        raise ValueError("no 'meta' object")
    experiments = results.get("experiments")
    if not isinstance(experiments, dict):
        raise ValueError("no 'experiments' object")
    for name, e in experiments.items():
        if (not isinstance(e, dict) or not isinstance(e.get("config"), dict)
                or not isinstance(e.get("summary"), dict)
                or not isinstance(e.get("runs", []), list)):
            raise ValueError(f"experiment {name!r} lacks its config, summary or runs")


def _pct(x: float) -> str:
    return f"{x:.2f}%"


def _mark(within: Any) -> str:
    return {True: "yes", False: "**no**", None: "n/a"}[within]


def render_report(results: dict[str, Any], images: dict[str, Any]) -> str:
    meta = results["meta"]
    lines = ["# gpunet reproduces *Neural Networks and Deep Learning*", ""]
    if meta["quick"]:
        lines += ["> **Quick smoke run** (1,000 training and 1,000 test images, one seed, "
                  "two epochs): numbers are not comparable with the book and ranges are "
                  "not checked.", ""]
    lines += [
        f"Command: `{meta['command']}`  ",
        f"Date: {meta['date']}; wall time {meta.get('wall_seconds', 0) / 60:.1f} min  ",
        f"Device: {meta['device']}; CPU {meta.get('cpu', 'not recorded')}; Python "
        f"{meta['python']}, NumPy {meta['numpy']}, gpunet {meta['gpunet']}; "
        f"{meta['platform']}  ",
        f"Precision {meta['dtype']}; {meta['seeds']} seed(s) per experiment (seeds 0.."
        f"{meta['seeds'] - 1}); accuracy is on the {meta['test_images']:,} test images after "
        "each epoch, as in the book; \"best\" is a run's highest epoch, as the book reports.",
        "",
    ]
    failures: list[str] = []
    exps = results["experiments"]
    if exps:
        lines += ["## MNIST experiments (the book's published numbers)", "",
                  "| experiment | sizes | cost | η | book | gpunet best | mean ± std of runs' best "
                  "| mean final | expected | in range |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for name, e in exps.items():
            c, s = e["config"], e["summary"]
            lines.append(
                f"| {c['title']} | {list(c['sizes'])} | {c['cost']} | {c['eta']} | {c['book']} | "
                f"{_pct(s['best_of_runs_pct'])} | {s['mean_best_pct']:.2f} ± "
                f"{s['std_best_pct']:.2f}% | {_pct(s['mean_final_pct'])} | {c['expected']} | "
                f"{_mark(s['within_range'])} |")
            if s["within_range"] is False:
                failures.append(f"{c['title']}: outside its expected range ({c['expected']})")
        lines.append("")
        if "binary4" in exps and "ten_outputs_mean_best_pct" in exps["binary4"]["summary"]:
            s = exps["binary4"]["summary"]
            verdict = ("a smoke run's numbers: no conclusion is drawn from them"
                       if meta["quick"] else
                       "as the book says they should: a hidden neuron's evidence maps onto "
                       "one digit more easily than onto a bit shared by many digits"
                       if s["mean_best_pct"] < s["ten_outputs_mean_best_pct"]
                       else "which is not what the book found")
            lines += [f"**10 outputs against 4 bits:** the 4-bit encoding reaches "
                      f"{s['mean_best_pct']:.2f}% on average (best of each run), the book's "
                      f"10 one-hot outputs {s['ten_outputs_mean_best_pct']:.2f}%, {verdict}.", ""]
        lines += ["Per-epoch details (every seed) are in `results/results.json`; "
                  "median training time per epoch:", ""]
        lines += [f"- {e['config']['title']}: {e['summary']['median_epoch_seconds']:.2f} s"
                  for e in exps.values()]
        lines.append("")
        for name in exps:
            if name in images:
                lines += [f"![{exps[name]['config']['title']}]({images[name]})", ""]
    if "baselines" in results:
        b = results["baselines"]
        d = b["average_darkness"]
        lines += ["## Baselines", "", "| method | book | gpunet |", "|---|---|---|",
                  f"| average darkness (nearest mean darkness per digit) | {BOOK_DARKNESS:,} / "
                  f"10,000 | {d['correct']:,} / {d['total']:,} |"]
        svm = b["svm"]
        if "correct" in svm:
            lines.append(f"| scikit-learn SVC, today's defaults (sklearn {svm['sklearn']}: "
                         f"gamma='scale'; {svm['seconds'] / 60:.0f} min) | {BOOK_SVM:,} / "
                         f"10,000 | {svm['correct']:,} / {svm['total']:,} |")
        else:
            lines.append(f"| scikit-learn SVC, default settings | {BOOK_SVM:,} / 10,000 | "
                         f"skipped: {svm['skipped']} |")
        era = b.get("svm_book_era")
        if era:
            lines.append(f"| scikit-learn SVC, the defaults of the book's time (gamma='auto' "
                         f"= 1/784; {era['seconds'] / 60:.0f} min) | {BOOK_SVM:,} / 10,000 | "
                         f"{era['correct']:,} / {era['total']:,} |")
        lines.append("")
        if "correct" in svm and era and not results["meta"]["quick"]:
            near = abs(era["correct"] - BOOK_SVM) <= 100
            lines += [
                "The book's SVM figure was made with scikit-learn's defaults of 2015, when "
                "`SVC` used `gamma='auto'` (1 / number of features); since scikit-learn "
                "0.22 the default is `gamma='scale'` (1 / (features × pixel variance), "
                "about ten times larger on MNIST), which scores higher. With the old "
                f"default gpunet's run gives {era['correct']:,}: "
                + ("within 1% of the book's 9,435." if near else
                   "**not** within 1% of the book's 9,435."), ""]
            if not near:
                failures.append("SVM with the book-era defaults: not within 1% of 9,435")
            if abs(svm["correct"] - BOOK_SVM) > 100:
                failures.append("SVM with today's defaults: not about 9,435")
    if "toy" in results:
        lines += _toy_section(results["toy"], images, failures)
    lines += ["## Findings", ""]
    if meta["quick"]:
        lines.append("Quick run: ranges not checked and no conclusions drawn.")
        failures = [f for f in failures if f.startswith("toy: ")]  # the toy runs in full
    elif not failures:
        lines.append("Every checked result is inside its expected range.")
    for f in failures:
        lines.append(f"- **{f}.** {EXPLANATIONS.get(f, 'Not explained yet: investigate.')}")
    lines.append("")
    return "\n".join(lines)


def _toy_section(toy: dict[str, Any], images: dict[str, Any], failures: list[str]) -> list[str]:
    at = (0, 50, 100, 150, 200, 300)
    lines = ["## The toy neuron (section 3.1: x = 1, target 0)", "",
             "| cost, η, start | " + " | ".join(f"output @ {e}" for e in at) + " | cost @ 0 | cost @ 300 |",
             "|---|" + "---|" * (len(at) + 2)]
    for name, run in toy.items():
        outs = [f"{run['outputs'][e]:.3f}" if e < len(run["outputs"]) else "" for e in at]
        lines.append(f"| {name} | " + " | ".join(outs) +
                     f" | {run['costs'][0]:.4f} | {run['costs'][-1]:.4f} |")
    lines.append("")
    q2 = toy.get("quadratic, η=0.15, w=b=2.0")
    q1 = toy.get("quadratic, η=0.15, w=0.6, b=0.9")
    ce2 = toy.get("cross-entropy, η=0.005, w=b=2.0")
    ce2_same = toy.get("cross-entropy, η=0.15, w=b=2.0")
    checks = []
    if q2 and len(q2["outputs"]) > 100:
        checks.append(("toy: quadratic from w=b=2.0 still outputs > 0.9 after 100 epochs",
                       q2["outputs"][100] > 0.9, f"{q2['outputs'][100]:.3f}"))
        drop2 = 1 - q2["costs"][100] / q2["costs"][0]
        checks.append(("toy: quadratic from w=b=2.0 has a flat early cost (< 10% drop in 100 epochs)",
                       drop2 < 0.10, f"{100 * drop2:.1f}% drop"))
    if q1 and len(q1["outputs"]) > 300:
        checks.append(("toy: quadratic from w=0.6, b=0.9 ends near 0.09",
                       abs(q1["outputs"][300] - 0.09) < 0.02, f"{q1['outputs'][300]:.3f}"))
    if ce2 and len(ce2["outputs"]) > 100:
        checks.append(("toy: cross-entropy from w=b=2.0 has output < 0.5 by epoch 100 (η=0.005)",
                       ce2["outputs"][100] < 0.5, f"{ce2['outputs'][100]:.3f}"))
    if ce2_same and len(ce2_same["outputs"]) > 100:
        checks.append(("toy: cross-entropy from w=b=2.0 has output < 0.5 by epoch 100 (η=0.15)",
                       ce2_same["outputs"][100] < 0.5, f"{ce2_same['outputs'][100]:.3f}"))
    lines += ["| check | result | in range |", "|---|---|---|"]
    for text, ok, value in checks:
        lines.append(f"| {text.removeprefix('toy: ')} | {value} | {_mark(ok)} |")
        if not ok:
            failures.append(text)
    lines.append("")
    for key in ("toy_cost", "toy_output"):
        if key in images:
            lines += [f"![{key}]({images[key]})", ""]
    return lines
