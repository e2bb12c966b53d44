"""The Markdown page of the studies (``studies.md``): statements, grids, tables, verdicts.

Verdict rules, applied to a paired difference's 95% t-interval: the book's claim is
*confirmed* when the interval lies wholly on the claimed side of zero, *refuted* when it
lies wholly on the other side, and *not resolved* (no difference this grid can detect)
when it contains zero; the text says how large the effect is next to the seed spread.
"""

from __future__ import annotations

import json
import statistics
from typing import Any, Optional

from .intervals import Interval, t_interval
from .studies import BOOK_ETA, COSTS, SMALL, Plan
from .studies_analysis import EARLY, FAILS, LEARNS, summary_line

QUOTES = {
    "cost": [
        ("Chapter 3 (book.md, section 3)", "Cross-entropy: ... output error `δ^L = a^L - y` "
         "(the `σ'` term cancels, so no learning slowdown when an output saturates on the "
         "wrong value)."),
        ("Chapters 1 and 3 (book.md, section 9)", "[784, 30, 10]: quadratic, η = 3.0: 95.42%; "
         "cross-entropy, η = 0.5: 95.49%. [784, 100, 10]: quadratic 96.59%, cross-entropy "
         "96.82% (best of three runs)."),
        ("Chapter 3 (quoted in issue 20)", "For the improvement to be really convincing we'd "
         "need to do a thorough job optimizing such hyper-parameters."),
    ],
    "eta": [("Chapter 1 (book.md, section 9)", "η = 3.0 gives 95.42%; η too small "
             "(0.001, [784, 100, 10]): epoch 0: 1139, epoch 29: 2142 (slowly improving); "
             "η too large (100.0, [784, 30, 10]): stuck near chance: 1009 then 982 / 10000."),
            ("Chapter 3 (book.md, section 10)", "find the η at which cost starts to "
             "oscillate, take about half.")],
    "hidden": [("Chapter 1 (book.md, section 9)", "[784, 30, 10]: 95.42% peak (epoch 28); "
                "[784, 100, 10]: 96.59% (runs vary; some much worse).")],
    "best_of_three": [("Chapters 1 to 3 (book.md, section 9)", "Published results to "
                       "reproduce (book, best of three runs).")],
    "init": [("Chapter 3 / network2.py (book.md, section 6)", "Chapter 1 (\"large\" "
              "initializer): every weight and bias drawn from N(0, 1). network2.py default: "
              "weights from N(0, 1/n_in) (standard deviation 1/sqrt(n_in)), biases from "
              "N(0, 1).")],
    "lambda": [("Chapter 3 / network2.py (book.md, section 5)", "With L2 regularization: "
                "`w → (1 - ηλ/n) w - (η/m) Σ_x ∂C_x/∂w` (biases are not decayed), `n` the "
                "size of the whole training set.")],
}


def _i(interval: Optional[Interval], signed: bool = False) -> str:
    return "—" if interval is None else interval.text(2, signed)


def verdict(diff: Optional[Interval], claim: str, positive: bool = True) -> str:
    """*confirmed* / *refuted* / *not resolved* for the claim that ``diff`` is > 0
    (``positive``) or < 0, with the interval."""
    if diff is None:
        return f"**not run yet** ({claim})"
    if diff.half is None:
        return f"**one seed only**: no interval ({claim})"
    text = f"{diff.text(2, signed=True)} points, 95% t-interval over {diff.n} seeds"
    if diff.excludes_zero():
        right = (diff.low > 0) == positive
        return f"**{'confirmed' if right else 'refuted'}**: {claim}: {text}"
    return f"**not resolved** (the interval contains 0): {claim}: {text}"


def _quote(key: str) -> list[str]:
    return [f"> {text}  \n> — {where}" + "\n" for where, text in QUOTES[key]]


def render_studies(plan: Plan, analysis: dict[str, Any], results: dict[str, Any],
                   sizes: dict[str, int], images: dict[str, str]) -> str:
    meta = results.get("meta", {})
    sessions = results.get("sessions", [])
    lines = ["# The experiments the book could not afford", "",
             "Every claim of chapters 1 to 3 that the book supports with single runs or a "
             "best of three, tested here with "
             f"{len(plan.seeds)} seeds per setting ({len(plan.headline_seeds)} for the book's "
             "four headline settings; issue 20). Regenerate (it resumes where "
             "it stopped; finished stacks are kept in `studies/studies.json`, keyed by "
             "every setting of each network):", "",
             "    gpunet reproduce --studies --out docs --device cpu" +
             (" --quick" if plan.quick else ""), ""]
    if plan.quick:
        lines += ["> **Quick smoke run**: 500 images per split, 2 epochs, tiny grids; the "
                  "numbers mean nothing and the verdicts are not judgements.", ""]
    if analysis["missing"]:
        lines += [f"> **Incomplete**: {analysis['missing']} of {analysis['runs']} runs are not "
                  "trained yet; rerun the command to finish them (tables show what is "
                  "there, — where nothing is).", ""]
    answer = summary_line(analysis)
    if answer:
        lines += [f"**Chapter 3's question** (is cross-entropy better once both costs are "
                  f"tuned?): {answer}; study 1 has the details.", ""]
    wall = sum(s.get("wall_seconds", 0.0) for s in sessions)
    lines += [
        "## How these numbers were made", "",
        f"- Machine: {meta.get('cpu', 'not recorded')}; {meta.get('platform', '')}; device "
        f"{meta.get('device', 'not recorded')}, {meta.get('dtype', 'float32')}",
        f"- Versions: gpunet {meta.get('gpunet', '?')}, Python {meta.get('python', '?')}, "
        f"NumPy {meta.get('numpy', '?')}",
        f"- Wall time: {wall / 60:.1f} min of training over {len(sessions)} session(s) "
        f"({_sessions_text(sessions)})",
        f"- Data: MNIST as the book splits it: {sizes['training']:,} training, "
        f"{sizes['validation']:,} validation, {sizes['test']:,} test images; mini-batch "
        "10; every network trained with `gpunet.NetworkStack` (up to 30 networks at once, "
        "each with its own seed, η and λ).",
        f"- Seeds {plan.seeds[0]}..{plan.seeds[-1]} for every setting "
        f"({plan.headline_seeds[0]}..{plan.headline_seeds[-1]} for the book's own η at "
        "each size and cost); one seed gives the "
        "same initial weights and the same mini-batch order in every setting of one "
        "network size, so settings are compared **paired by seed**.",
        "- Intervals: mean ± the half-width of the two-sided 95% Student t-interval over "
        "the seeds (`x̄ ± t(0.975, n−1)·s/√n`); a difference is the t-interval of the "
        "per-seed differences. Accuracy is on the test set after the last epoch unless "
        "said otherwise; η and λ are chosen on the validation set (mean final validation "
        "accuracy over the seeds) and only then read on the test set.",
        "- Verdicts: *confirmed* when the difference's interval lies on the book's side of "
        "0, *refuted* when on the other, *not resolved* when it contains 0.",
        "", "### What was reduced from the issue's ideal, and why", ""]
    lines += [f"- {r}" for r in plan.reductions]
    lines += [] if plan.quick else ["- Sizing: the set was sized for about 45 minutes on the 2-core CPU machine "
              "from a measured stack epoch before the run (10 networks [784, 30, 10]: 2.0 s "
              "an epoch, [784, 100, 10]: 3.7 s, plus about 0.04 / 0.06 s per network to "
              "measure validation and test accuracy), then widened when stacks of 20 to 30 "
              "networks proved faster per network. " + _speed_text(results)]
    lines += ["", "### The exact grid", "", "```", _grid_text(plan), "```", ""]
    lines += _study_cost(plan, analysis, images)
    lines += _study_eta(plan, analysis, images)
    lines += _study_hidden(plan, analysis, images)
    lines += _study_best_of_three(analysis, images)
    lines += _study_network2(plan, analysis, images)
    return "\n".join(lines) + "\n"


def _speed_text(results: dict[str, Any]) -> str:
    """Seconds per network and epoch in this run (training and both accuracies), by
    hidden layer, from the stacks trained on all 50,000 images."""
    per: dict[int, list[float]] = {}
    for key, row in results.get("runs", {}).items():
        settings = json.loads(key)
        if settings["n_train"] == 50_000 and row.get("seconds"):
            per.setdefault(settings["sizes"][1], []).append(row["seconds"] / settings["epochs"])
    if not per:
        return ""
    return "Measured in this run, per network and epoch in its stack: " + ", ".join(
        f"[784, {h}, 10] {statistics.median(v):.3f} s (median of {len(v)})"
        for h, v in sorted(per.items())) + "."


def _sessions_text(sessions: list[dict[str, Any]]) -> str:
    return ", ".join(f"{s['date']}: {s['networks']} networks, {s['wall_seconds'] / 60:.1f} min"
                     for s in sessions)


def _grid_text(plan: Plan) -> str:
    g = plan.grid()
    rows = [f"seeds: {list(plan.seeds)}",
            f"seeds of the book's own η in study 1: {list(plan.headline_seeds)}", f"data limit: {plan.limit or 'none (all images)'}"]
    for size, by_cost in plan.cost_etas.items():
        for c, etas in by_cost.items():
            rows.append(f"study 1 {list(size)} {c} (init large): η in {list(etas)}, "
                        f"{plan.cost_epochs} epochs")
    rows.append(f"study 2 {list(plan.eta_sizes)} both costs (init large): η in "
                f"{list(plan.eta_grid)}, {plan.eta_epochs} epochs")
    rows.append("studies 3, 4: study 1's runs at the book's η "
                f"({', '.join(f'{c} {e}' for c, e in BOOK_ETA.items())})")
    rows.append(f"study 5 init: [784, 30, 10] cross-entropy η 0.5, init large and default, "
                f"{g['init_epochs']} epochs")
    rows.append(f"study 5 λ: [784, 30, 10] cross-entropy η 0.5 init large; "
                f"{plan.lambda_small_n:,} images: λ in {list(plan.lambda_small)}, "
                f"{plan.lambda_small_epochs} epochs (accuracy every "
                f"{plan.lambda_small_eval_every}); {plan.n_train:,} images: λ in "
                f"{list(plan.lambda_full)}, {plan.lambda_full_epochs} epochs")
    return "\n".join(rows)


def _image(images: dict[str, str], key: str, alt: str) -> list[str]:
    return [f"![{alt}]({images[key]})", ""] if key in images else []


def _study_cost(plan: Plan, analysis: dict[str, Any], images: dict[str, str]) -> list[str]:
    lines = ["## 1. Cross-entropy against quadratic, each at its own best η", ""]
    lines += _quote("cost")
    lines += [f"Grid: each cost over its own η grid, {plan.cost_epochs} epochs, chapter 1's "
              "N(0, 1) initialization; η chosen by mean final validation accuracy over the "
              f"seeds every η has ({plan.seeds[0]}..{plan.seeds[-1]}; the book's η rows show "
              f"all {len(plan.headline_seeds)} of theirs, so their mean may differ from the "
              "one the choice compared).", ""]
    for size, entry in analysis["cost"].items():
        lines += [f"### {list(size)}", "",
                  "| cost | η | validation (final) | test (final) | test (best epoch) | seeds |",
                  "|---|---|---|---|---|---|"]
        for c in COSTS:
            for eta, s in sorted(entry["grid"][c].items()):
                mark = " **(chosen)**" if entry["chosen"][c] == eta else ""
                lines.append(f"| {c} | {eta:g}{mark} | {_i(s.interval(s.final('validation')))} "
                             f"| {_i(s.interval(s.final()))} | {_i(s.interval(s.peak()))} | "
                             f"{s.found}/{len(s.runs)} |")
        lines.append("")
        for c in COSTS:
            if entry["edge"][c]:
                lines += [f"Note: {c}'s chosen η = {entry['chosen'][c]:g} is at the edge of "
                          "its grid; its best may lie beyond it.", ""]
        diff = entry.get("difference")
        lines.append("- Tuned against tuned (test, final epoch): "
                     + verdict(diff, "cross-entropy minus quadratic"))
        lines.append("- At the book's η (cross-entropy 0.5, quadratic 3.0): "
                     + verdict(entry.get("book_difference"), "cross-entropy minus quadratic"))
        for e, q, ce, d in entry.get("early", []):
            lines.append(f"- After epoch {e} (test): quadratic {_i(q)}, cross-entropy {_i(ce)}; "
                         + verdict(d, "cross-entropy learns faster early"))
        lines.append("")
        lines += _image(images, "cost" + "-".join(str(n) for n in size[1:-1]),
                        f"study 1 {list(size)}")
    lines += ["**Verdict.** " + _cost_verdict(analysis), ""]
    return lines


def _cost_verdict(analysis: dict[str, Any]) -> str:
    parts = []
    for size, entry in analysis["cost"].items():
        diff = entry.get("difference")
        if diff is None or diff.half is None:
            parts.append(f"{list(size)}: not run yet.")
            continue
        early = [d for _, _, _, d in entry.get("early", []) if d is not None]
        faster = [d for d in early if d.excludes_zero() and d.low > 0]
        word = ("better" if diff.excludes_zero() and diff.low > 0 else
                "worse" if diff.excludes_zero() else "not detectably different from quadratic")
        parts.append(
            f"{list(size)}: once both are tuned, cross-entropy is {word}"
            f"{' than quadratic' if word in ('better', 'worse') else ''} "
            f"({diff.text(2, signed=True)} points); in the first epochs it is detectably "
            f"ahead in {len(faster)} of {len(early)} (epochs {', '.join(str(e) for e in EARLY[:len(early)])}).")
    return " ".join(parts)


def _study_eta(plan: Plan, analysis: dict[str, Any], images: dict[str, str]) -> list[str]:
    curve, ranges = analysis["eta"]["curve"], analysis["eta"]["ranges"]
    lines = ["## 2. How accuracy depends on η", ""] + _quote("eta")
    lines += [f"Grid: {list(plan.eta_sizes)}, N(0, 1) init, η on a half-decade log grid, "
              f"{plan.eta_epochs} epochs; test accuracy after the last epoch.", "",
              "| η | " + " | ".join(COSTS) + " |", "|---|---|---|"]
    for eta in plan.eta_grid:
        cells = []
        for c in COSTS:
            s = curve[c][eta]
            div = f" ({len(s.diverged)} diverged)" if s.diverged else ""
            cells.append(_i(s.interval(s.final())) + div)
        lines.append(f"| {eta:g} | " + " | ".join(cells) + " |")
    lines.append("")
    parts = []
    for c in COSTS:
        r = ranges[c]
        learns = (f"never reaches {LEARNS:g}%" if r["learns"] is None else
                  f"reaches ≥ {LEARNS:g}% for η from {r['learns'][0]:g} to {r['learns'][1]:g}")
        fails = (f"stays below {FAILS:g}% (near chance) at η = "
                 + ", ".join(f"{e:g}" for e in r["fails"])) if r["fails"] else \
            f"is above {FAILS:g}% everywhere on the grid"
        if r["best"] is None:
            parts.append(f"**{c}**: not run yet.")
            continue
        parts.append(f"**{c}** {learns}, {fails}; best at η = {r['best']:g}.")
    lines += ["**Verdict.** " + " ".join(parts) + " " + _eta_book_check(curve), ""]
    lines += _image(images, "eta", "study 2")
    return lines


def _eta_book_check(curve: dict[str, Any]) -> str:
    q = curve["quadratic"]
    notes = []
    for eta, claim, below in ((0.001, "η = 0.001 is far too small", 50.0),
                              (100.0, "η = 100 fails", FAILS)):
        s = q.get(eta)
        if s is not None and s.found:
            m = t_interval(list(s.final().values())).mean
            notes.append(f"chapter 1's \"{claim}\" (quadratic) is "
                         f"{'confirmed' if m < below else 'refuted'} ({m:.2f}%).")
    return " ".join(notes)


def _study_hidden(plan: Plan, analysis: dict[str, Any], images: dict[str, str]) -> list[str]:
    lines = ["## 3. 30 against 100 hidden neurons", ""] + _quote("hidden")
    lines += [f"Grid: study 1's runs ({plan.cost_epochs} epochs). Difference = [784, 100, 10] minus "
              "[784, 30, 10], paired by seed; \"spread\" is the seeds' standard deviation.",
              "", "| η | cost | 30 hidden | 100 hidden | difference | spread 30 / 100 | "
              "difference, best epochs |", "|---|---|---|---|---|---|---|"]
    for r in analysis["hidden"]:
        etas = r["etas"]
        eta = f"{etas[0]:g}" if etas[0] == etas[1] else f"{etas[0]:g} / {etas[1]:g}"
        lines.append(f"| {r['label']} {eta} | {r['cost']} | {_i(r['small'])} | {_i(r['large'])} "
                     f"| {_i(r['difference'], True)} | {r['small'].std:.2f} / "
                     f"{r['large'].std:.2f} | {_i(r['peak_difference'], True)} |")
    lines.append("")
    if analysis["hidden"]:
        lines.append("**Verdict** (the book: +1.17 points, 95.42% → 96.59%, quadratic at "
                     "η = 3):")
    for r in analysis["hidden"]:
        d, spread = r["difference"], max(r["small"].std, r["large"].std)
        ratio = f"{d.mean / spread:.1f}" if spread > 0 else "∞"
        lines.append(f"- {r['cost']}, {r['label']}: " + verdict(d, "100 hidden neurons beat 30")
                     + f"; the difference is {ratio} times the larger seed-to-seed standard "
                     f"deviation; {r['large_below_90']} of {r['large_runs']} runs with 100 "
                     "hidden neurons end below 90%.")
    lines.append("")
    lines += _image(images, "hidden", "study 3")
    return lines


def _study_best_of_three(analysis: dict[str, Any], images: dict[str, str]) -> list[str]:
    lines = ["## 4. Best of three, quantified", ""] + _quote("best_of_three")
    lines += ["Grid: study 1's runs at the book's η, each run's best epoch on the test set "
              "(the book's way of reporting). Best of three is averaged over every triple "
              "of the seeds.", "",
              "| experiment | sizes | book | mean run | expected best of 3 | best of 3 − mean "
              "| runs > 1 point below the mean | triples with a run > 1 point below its best "
              "| runs ≥ the book | runs > 1 point below the book |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for h in analysis["best_of_three"]:
        p = h["peak"]
        lines.append(f"| {h['name']} ({h['cost']}, η = {h['eta']:g}) | {list(h['size'])} | "
                     f"{h['book']:.2f}% | {p.mean:.2f}% | {p.best_of_three:.2f}% | "
                     f"+{p.lift:.2f} | {100 * p.chance_below_mean_by_1:.0f}% | "
                     f"{100 * p.chance_triple_spread_over_1:.0f}% | "
                     f"{100 * h['at_least_book']:.0f}% | {100 * h['below_book_by_1']:.0f}% |")
    lines.append("")
    if analysis["best_of_three"]:
        worst = max(analysis["best_of_three"], key=lambda h: h["peak"].lift)
        lifts = [h["peak"].lift for h in analysis["best_of_three"]]
        finals = [h["final"].lift for h in analysis["best_of_three"]]
        lines += [f"**Verdict.** A best of three lies {min(lifts):.2f} to {max(lifts):.2f} "
                  "points above the mean run's best epoch (the final epoch: "
                  f"{min(finals):.2f} to {max(finals):.2f}); the book's numbers are a best "
                  "of three of best epochs, so they sit above what one run gives on average "
                  "by about that much, plus the best-epoch choice made on the test set. "
                  f"The largest gap is {worst['name']} ({worst['cost']}, "
                  f"{list(worst['size'])}): +{worst['peak'].lift:.2f} points, and "
                  f"{100 * worst['below_book_by_1']:.0f}% of its single runs end more than a "
                  "point below the book's figure.", ""]
    lines += _image(images, "best_of_three", "study 4")
    return lines


def _study_network2(plan: Plan, analysis: dict[str, Any], images: dict[str, str]) -> list[str]:
    lines = ["## 5. From network2.py: initialization and L2 regularization", "",
             "### Large against default initialization", ""] + _quote("init")
    init = analysis["init"]
    lines += [f"Grid: [784, 30, 10], cross-entropy, η = 0.5, {plan.init_epochs} epochs. "
              "Difference = default minus large, paired by seed.", "",
              "| after epoch | large N(0, 1) | default N(0, 1/n_in) | difference |",
              "|---|---|---|---|"]
    for e, large, default, d in init["compare"]:
        lines.append(f"| {e} | {_i(large)} | {_i(default)} | {_i(d, True)} |")
    lines.append("")
    if init["compare"]:
        first, last = init["compare"][0], init["compare"][-1]
        lines += ["**Verdict.** " + verdict(first[3], f"the default init learns faster "
                                            f"(after epoch {first[0]})")
                  + "; at the end: " + verdict(last[3], f"the default init is better after "
                                              f"epoch {last[0]}"), ""]
    lines += ["### λ at 1,000 and at 50,000 training images", ""] + _quote("lambda")
    for key in ("small", "full"):
        entry = analysis["lambda"][key]
        lines += [f"{entry['n']:,} training images:", "",
                  "| λ | validation (final) | test (final) | test (best epoch) |",
                  "|---|---|---|---|"]
        for lm, s in sorted(entry["settings"].items()):
            mark = " **(chosen)**" if entry["chosen"] == lm else ""
            lines.append(f"| {lm:g}{mark} | {_i(s.interval(s.final('validation')))} | "
                         f"{_i(s.interval(s.final()))} | {_i(s.interval(s.peak()))} |")
        lines.append("")
        if entry.get("difference") is not None:
            lines += [f"- The best λ > 0 on validation (λ = {entry['regularized']:g}) against "
                      "λ = 0: " + verdict(entry["difference"], "regularization helps"), ""]
    small, full = analysis["lambda"]["small"], analysis["lambda"]["full"]
    if small.get("difference") is not None and full.get("difference") is not None:
        lines += [f"**Verdict.** The best λ > 0 changes test accuracy by "
                  f"{small['difference'].text(2, True)} points at {small['n']:,} images (λ = "
                  f"{small['regularized']:g}) and by {full['difference'].text(2, True)} at "
                  f"{full['n']:,} (λ = {full['regularized']:g}), both against λ = 0 with "
                  "the same seeds. The weight decay per step is ηλ/n, so one λ decays the "
                  f"weights {full['n'] // max(small['n'], 1)} times harder per step with "
                  f"{small['n']:,} images than with {full['n']:,}; on these coarse grids the "
                  "best λ is "
                  + ("the same at both sizes." if small["regularized"] == full["regularized"]
                     else "different at the two sizes."), ""]
    lines += _image(images, "network2", "study 5")
    return lines

