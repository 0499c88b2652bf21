"""Tables of the selection benchmark: the front, per-family detail, defaults.

A record is ``(part, family, n, seed, results, oracles)``: ``part`` is
``"pos"``, ``"neg"`` (synthetic) or ``"real"``; ``results`` maps a rule name
to ``(ratio, chosen n_steps, baseline risk)``; ``oracles`` holds the oracle
risks of ridge and the 1- and 2-step students (synthetic parts only).
"""

from collections import defaultdict

import numpy as np


def _ratios(records, rule, part, n=None, family=None):
    return np.array(
        [
            r[4][rule][0]
            for r in records
            if r[0] == part
            and rule in r[4]
            and (n is None or r[2] == n)
            and (family is None or r[1] == family)
        ]
    )


def _share(records, rule, n, family=None):
    """``sum log(ratio) / sum log(oracle ratio)`` (2-step oracle)."""
    num = den = 0.0
    for r in records:
        if r[0] != "pos" or r[2] != n or (family and r[1] != family):
            continue
        ratio, _, base = r[4][rule]
        num += np.log(ratio)
        den += np.log(min(r[5][2] / base, 1.0))
    return num / den if den < 0 else np.nan


def _worst_family_mean(records, rule, n):
    fams = sorted({r[1] for r in records if r[0] == "pos" and r[2] == n})
    means = [_ratios(records, rule, "pos", n, f).mean() for f in fams]
    return max(means) if means else np.nan


def _neg_cell(records, rule, part):
    """Largest per-n mean, share of fits > 1.05, worst fit."""
    ns = sorted({r[2] for r in records if r[0] == part})
    if not ns:
        return "-"
    means = [_ratios(records, rule, part, n).mean() for n in ns]
    r = _ratios(records, rule, part)
    return f"{max(means):.3f} {np.mean(r > 1.05):4.0%} {r.max():5.2f}"


def _steps_penalty(records, rule):
    """Worst fit offering 0-4 steps over the worst offering 0-1."""
    if "/0-4/" not in rule:
        return ""
    other = rule.replace("/0-4/", "/0-1/")
    pairs = [(r[4][rule][0], r[4][other][0]) for r in records if other in r[4]]
    if not pairs:
        return ""
    a, b = np.array(pairs).T
    return f"{a.max() / b.max():.3f}"


def report_front(records, rules):
    """One line per rule: negatives, positives, steps penalty."""
    print(
        "\nThe front. neg/real: largest per-n mean ratio, share of fits > 1.05,"
        " worst; pos: worst family's mean ratio at n = 100 / 300 / 1000, share"
        " of the oracle's log-gain at n = 1000, share > 1.05, worst; 0-4/0-1:"
        " worst fit offering 0-4 steps over that offering 0-1"
    )
    print(
        f"  {'rule':<26} {'neg (synthetic)':>17} {'real subsets':>17} "
        f"{'pos@100':>7} {'@300':>6} {'@1000':>6} {'share':>6} {'>1.05':>5} "
        f"{'worst':>6} {'0-4/0-1':>7}"
    )
    for rule in rules:
        pos = _ratios(records, rule, "pos")
        cells = [_worst_family_mean(records, rule, n) for n in (100, 300, 1000)]
        pos_txt = (
            f"{cells[0]:7.3f} {cells[1]:6.3f} {cells[2]:6.3f} "
            f"{_share(records, rule, 1000):6.2f} {np.mean(pos > 1.05):5.0%} "
            f"{pos.max():6.2f}"
            if pos.size
            else ""
        )
        print(
            f"  {rule:<26} {_neg_cell(records, rule, 'neg'):>17} "
            f"{_neg_cell(records, rule, 'real'):>17} {pos_txt} "
            f"{_steps_penalty(records, rule):>7}"
        )


def report_detail(records, rule):
    """Per family and n: mean, share of oracle gain, > 5% worse, worst."""
    print(
        f"\n{rule}: per family, ratio to RidgeCV (same splits); oracle ratios "
        "(ridge, 1-step, 2-step) against the same RidgeCV"
    )
    print(
        f"  {'family':<34} {'n':>5} {'mean':>6} {'share':>6} {'>1.05':>5} "
        f"{'worst':>6} {'steps':>5} {'or.ridge':>8} {'or.1':>6} {'or.2':>6}"
    )
    groups = defaultdict(list)
    for r in records:
        if rule in r[4]:
            groups[(r[0], r[1], r[2])].append(r)
    for (part, family, n), rows in sorted(groups.items()):
        rat = np.array([r[4][rule][0] for r in rows])
        steps = np.mean([r[4][rule][1] for r in rows])
        line = (
            f"  {part + ' ' + family:<34} {n:>5} {rat.mean():6.3f} "
            f"{{share}} {np.mean(rat > 1.05):5.0%} {rat.max():6.2f} {steps:5.1f}"
        )
        if rows[0][5] is None:
            print(line.format(share=f"{'':>6}"))
            continue
        orc = np.array([r[5] / r[4][rule][2] for r in rows]).mean(axis=0)
        share = _share(rows, rule, n) if part == "pos" else np.nan
        print(
            line.format(share=f"{share:6.2f}")
            + f" {orc[0]:8.3f} {orc[1]:6.3f} {orc[2]:6.3f}"
        )


def report_defaults(records):
    """``SelfDistillCV()`` against ``RidgeCV()``, per part and n."""
    print("\nDefaults against defaults: SelfDistillCV() / RidgeCV()")
    print(f"  {'part':>5} {'n':>5} {'mean':>6} {'>1.05':>5} {'worst':>6}")
    for part in ("neg", "real", "pos"):
        for n in sorted({r[2] for r in records if r[0] == part}):
            r = _ratios(records, "defaults", part, n)
            print(
                f"  {part:>5} {n:>5} {r.mean():6.3f} {np.mean(r > 1.05):5.0%} "
                f"{r.max():6.2f}"
            )


def report_all(records, rules, detail, default_rule):
    """Print the front, the detail of the ``detail`` rules, the defaults."""
    report_front(records, rules)
    for rule in dict.fromkeys([default_rule, *detail]):
        if rule in rules:
            report_detail(records, rule)
    report_defaults(records)
