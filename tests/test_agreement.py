"""workbench.agreement: majority counts, yes shares, pairwise agreement and Fleiss' kappa, each
checked against numbers worked out by hand (and the Wikipedia example of Fleiss' kappa)."""

from __future__ import annotations

import pytest

from workbench import agreement as ag


def test_fleiss_kappa_wikipedia_example() -> None:
    # https://en.wikipedia.org/wiki/Fleiss%27_kappa worked example: 10 subjects, 14 raters,
    # 5 categories: P-bar = 0.378, P_e = 0.213, kappa = 0.210.
    table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0],
             [2, 2, 8, 1, 1], [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2],
             [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    assert ag.pairwise_agreement(table) == pytest.approx(0.378, abs=5e-4)
    assert ag.chance_agreement(table) == pytest.approx(0.213, abs=5e-4)
    result = ag.agreement(table)
    assert result.n_items == 10
    assert result.percent == pytest.approx(0.378, abs=5e-4)
    assert result.kappa == pytest.approx(0.210, abs=5e-4)


def test_agreement_by_hand_three_annotators() -> None:
    # Four samples, three annotators, yes counts 3, 0, 2, 1 ([yes, no] per sample).
    # Per-sample agreeing pairs: 3/3, 3/3, 1/3, 1/3 -> P-bar = (1 + 1 + 1/3 + 1/3) / 4 = 2/3.
    # Yes share 6/12 = 1/2, so P_e = 1/4 + 1/4 = 1/2 and kappa = (2/3 - 1/2) / (1/2) = 1/3.
    result = ag.agreement([[3, 0], [0, 3], [2, 1], [1, 2]])
    assert result.n_items == 4
    assert result.percent == pytest.approx(2 / 3)
    assert result.kappa == pytest.approx(1 / 3)
    assert result.note is None


def test_items_with_different_numbers_of_annotators() -> None:
    # [2, 0]: 1 pair, agrees -> 1. [1, 2]: 3 pairs, 1 agrees (the two no's) -> 1/3.
    # [1, 0]: one annotator, left out. P-bar = (1 + 1/3) / 2 = 2/3.
    # Over the rated answers: yes 3 of 5, no 2 of 5 -> P_e = 9/25 + 4/25 = 13/25.
    # kappa = (2/3 - 13/25) / (12/25) = (50/75 - 39/75) / (36/75) = 11/36.
    table = [[2, 0], [1, 2], [1, 0]]
    assert ag.pairwise_agreement(table) == pytest.approx(2 / 3)
    assert ag.chance_agreement(table) == pytest.approx(13 / 25)
    result = ag.agreement(table)
    assert (result.n_items, result.kappa) == (2, pytest.approx(11 / 36))


def test_undefined_agreement_says_why() -> None:
    same = ag.agreement([[3, 0], [3, 0]])
    assert (same.n_items, same.percent, same.kappa) == (2, 1.0, None)
    assert "every answer was the same" in (same.note or "")
    alone = ag.agreement([[1, 0], [0, 1]])
    assert (alone.n_items, alone.percent, alone.kappa) == (0, None, None)
    assert "at least 2 annotators" in (alone.note or "")
    assert ag.pairwise_agreement([]) is None and ag.chance_agreement([[0, 1]]) is None


def test_majority_counts_and_shares() -> None:
    # yes > half: [3, 0] yes, [2, 1] yes, [1, 1] a tie (no), [1, 2] no, [0, 0] nobody rated.
    table = [[3, 0], [2, 1], [1, 1], [1, 2], [0, 0]]
    assert ag.majority_count(table) == 2
    assert ag.majority_count(table, category=1) == 1          # only [1, 2] has a 'no' majority
    # yes answers 3 + 2 + 1 + 1 = 7 of 3 + 3 + 2 + 3 = 11.
    assert ag.category_share(table) == pytest.approx(7 / 11)
    assert ag.category_share(table, category=1) == pytest.approx(4 / 11)
    assert ag.category_share([[0, 0]]) is None and ag.majority_count([]) == 0


def test_the_module_is_pure() -> None:
    # Pure functions over counts: nothing of the store, the pipelines or the CLI, no numpy.
    import ast
    from pathlib import Path

    tree = ast.parse(Path(ag.__file__).read_text(encoding="utf-8"))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)} | {
        alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
        for alias in node.names}
    assert imported <= {"__future__", "collections.abc", "dataclasses"}


def test_krippendorff_alpha_reproduces_krippendorffs_worked_example() -> None:
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability", the nominal example:
    # 4 observers, 12 units, values 1..5, some missing; alpha (nominal) = 0.743.
    # Rows are units, columns the values 1..5 (how many observers chose each).
    table = [[3, 0, 0, 0, 0], [0, 3, 1, 0, 0], [0, 0, 4, 0, 0], [0, 0, 4, 0, 0],
             [0, 4, 0, 0, 0], [1, 1, 1, 1, 0], [0, 0, 0, 4, 0], [3, 1, 0, 0, 0],
             [0, 4, 0, 0, 0], [0, 0, 0, 0, 3], [2, 0, 0, 0, 0], [0, 0, 1, 0, 0]]
    assert ag.krippendorff_alpha(table) == pytest.approx(0.743, abs=5e-4)


def test_krippendorff_alpha_and_fleiss_kappa_by_hand() -> None:
    # Two curators, four intents, filter names [A, A], [A, B], [B, B], [C, C].
    # n = 8 answers. Observed: sum over items of sum_c n_uc (n_uc - 1) / (n_u - 1) =
    # 2 + 0 + 2 + 2 = 6, A_o = 6/8. Totals A 3, B 3, C 2: A_e = (6 + 6 + 2) / (8 * 7) = 1/4.
    # alpha = (3/4 - 1/4) / (3/4) = 2/3.
    # Fleiss: P-bar = (1 + 0 + 1 + 1) / 4 = 3/4; P_e = (3/8)^2 + (3/8)^2 + (2/8)^2 = 22/64;
    # kappa = (48/64 - 22/64) / (42/64) = 26/42 = 13/21.
    table = [[2, 0, 0], [1, 1, 0], [0, 2, 0], [0, 0, 2]]
    assert ag.krippendorff_alpha(table) == pytest.approx(2 / 3)
    assert ag.agreement(table).kappa == pytest.approx(13 / 21)


def test_krippendorff_alpha_with_different_numbers_of_annotators() -> None:
    # [A, A, B] and [none, none] (columns A, B, none), plus one item rated once (left out).
    # n = 5. A_o = ((2*1 + 0) / 2 + 2*1 / 1) / 5 = 3/5. Totals A 2, B 1, none 2:
    # A_e = (2 + 0 + 2) / (5 * 4) = 1/5. alpha = (3/5 - 1/5) / (4/5) = 1/2.
    assert ag.krippendorff_alpha([[2, 1, 0], [0, 0, 2], [1, 0, 0]]) == pytest.approx(0.5)


def test_krippendorff_alpha_undefined_cases() -> None:
    assert ag.krippendorff_alpha([]) is None
    assert ag.krippendorff_alpha([[1, 0], [0, 1]]) is None        # nobody rated an item twice
    assert ag.krippendorff_alpha([[2, 0], [3, 0]]) is None        # one category only: A_e = 1
