"""How far annotators agree, and what most of them said: pure functions over count tables.

A table has one row per item and one column per category: `table[i][j]` is how many annotators
put item i in category j (for a yes/no question, `[yes, no]`). Items may have different numbers
of annotators. The reality check's report uses these for its two questions, and label statistics
for curators' filter names (Fleiss' kappa, Krippendorff's alpha); nothing here reads the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Table = Sequence[Sequence[int]]


@dataclass(frozen=True)
class Agreement:
    """Inter-annotator agreement over the items rated by at least two annotators.

    `percent`: the mean over items of the share of annotator pairs that gave the same answer
    (Fleiss' P-bar). `kappa`: Fleiss' kappa, (P-bar - P_e) / (1 - P_e) with P_e the chance
    agreement from the overall answer shares; each item's share of agreeing pairs uses its own
    number of annotators. None, with `note` saying why, when undefined."""

    n_items: int
    percent: float | None
    kappa: float | None
    note: str | None = None


def _rated(table: Table) -> list[Sequence[int]]:
    """The items with at least two answers: agreement needs a pair."""
    return [row for row in table if sum(row) >= 2]


def pairwise_agreement(table: Table) -> float | None:
    """Fleiss' P-bar: the mean, over items rated at least twice, of the share of annotator pairs
    that agree on the item. None when no item was rated twice."""
    rated = _rated(table)
    if not rated:
        return None
    per_item = [sum(c * (c - 1) for c in row) / (sum(row) * (sum(row) - 1)) for row in rated]
    return sum(per_item) / len(per_item)


def chance_agreement(table: Table) -> float | None:
    """Fleiss' P_e: the chance that two answers agree, from each category's share of all the
    answers to items rated at least twice. None when no item was rated twice."""
    rated = _rated(table)
    if not rated:
        return None
    total = sum(sum(row) for row in rated)
    return sum((sum(row[j] for row in rated) / total) ** 2 for j in range(len(rated[0])))


def agreement(table: Table) -> Agreement:
    """Pairwise agreement and Fleiss' kappa of a count table (see `Agreement`)."""
    rated = _rated(table)
    p_bar, chance = pairwise_agreement(rated), chance_agreement(rated)
    if p_bar is None or chance is None:
        return Agreement(0, None, None, "needs at least 2 annotators on a sample")
    if chance >= 1.0:
        return Agreement(len(rated), p_bar, None,
                         "every answer was the same, so chance agreement is 1 and kappa is "
                         "undefined")
    return Agreement(len(rated), p_bar, (p_bar - chance) / (1.0 - chance))


def krippendorff_alpha(table: Table) -> float | None:
    """Krippendorff's alpha for nominal data, (A_o - A_e) / (1 - A_e), over the items rated at
    least twice (any number of annotators each).

    With n_u answers to item u, n_uc of them category c, and n answers in all: the observed
    agreement A_o = sum_u sum_c n_uc (n_uc - 1) / (n_u - 1) / n (the coincidence matrix's
    diagonal over n), the expected A_e = sum_c n_c (n_c - 1) / (n (n - 1)) with n_c the answers
    in category c. None when no item was rated twice or every answer was the same (A_e = 1)."""
    rated = _rated(table)
    if not rated:
        return None
    n = sum(sum(row) for row in rated)
    observed = sum(sum(c * (c - 1) for c in row) / (sum(row) - 1) for row in rated) / n
    totals = [sum(row[j] for row in rated) for j in range(len(rated[0]))]
    expected = sum(t * (t - 1) for t in totals) / (n * (n - 1))
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def majority_count(table: Table, category: int = 0) -> int:
    """How many items more than half of their annotators put in `category`; a tie is no
    majority. Items nobody rated count for nothing."""
    return sum(2 * row[category] > sum(row) for row in table)


def category_share(table: Table, category: int = 0) -> float | None:
    """The share of all answers that are `category`; None when there are no answers."""
    total = sum(sum(row) for row in table)
    return sum(row[category] for row in table) / total if total else None
