"""Mining strategies (issue 15): which training intents each strategy sends to the paraphraser,
worked out by hand on five intents; the worst-k% count; the settings' checks; and the strategies
end to end on the tiny world (mean is the paper's rule exactly as it was)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipelines import augment
from pipelines.augment import MiningConfig, MiningStrategy, select_sources
from tests.conftest import curated_store
from workbench.errors import WorkbenchError
from workbench.metrics import IntentScore, intent_losses, tool_loss

# Five intents. adjust: (teacher used, student used, signed cosine); selective_adjust: unused by
# both everywhere (TN, cosine 1); filter: TP with the right name ("right"), TP with a wrong one
# ("wrong"), only the student ("FP") or neither ("TN").
#
#        adjust            filter   tool losses (adjust, selective, filter)   intent loss
#   a    TP cos  1.0       right    0, 0, 0                                   0
#   b    TP cos  0.6       wrong    0.2, 0, 1                                 1.2/3 = .4
#   c    TP cos -0.2       right    0.6, 0, 0                                 0.6/3 = .2
#   d    FN (cos 0)        TN       1, 0, 0                                   1/3  = .333
#   e    TP cos  0.8       FP       0.1, 0, 1                                 1.1/3 = .367
#
# adjust's mean cosine over TP intents: (1 + .6 - .2 + .8) / 4 = .55, so the paper's rule flags
# adjust for c (-.2) and d (0); the filter for b (wrong name) and e (FP). selective_adjust has no
# TP intent, so no mean and no flag.
ROWS = {
    "a": (("TP", 1.0), "right"),
    "b": (("TP", 0.6), "wrong"),
    "c": (("TP", -0.2), "right"),
    "d": (("FN", 0.0), "TN"),
    "e": (("TP", 0.8), "FP"),
}
USED = {"TP": (True, True), "FN": (True, False), "FP": (False, True), "TN": (False, False)}


def scores() -> list[IntentScore]:
    found = []
    for key, ((outcome, cosine), filter_) in ROWS.items():
        teacher, student = USED[outcome]
        found.append(IntentScore(key, "adjust", teacher, student,
                                 cosine if outcome == "TP" else None, cosine))
        found.append(IntentScore(key, "selective_adjust", False, False, None, 1.0))
        if filter_ in ("right", "wrong"):
            found.append(IntentScore(key, "filter", True, True, float(filter_ == "right"),
                                     intensity_error=0))
        else:
            teacher, student = USED[filter_]
            found.append(IntentScore(key, "filter", teacher, student, None))
    return found


def test_the_loss_per_intent() -> None:
    losses = intent_losses(scores())
    assert losses == pytest.approx({"a": 0.0, "b": 0.4, "c": 0.2, "d": 1 / 3, "e": 1.1 / 3})


def test_the_loss_of_opposite_and_unrelated_answers() -> None:
    opposite = IntentScore("x", "adjust", True, True, -1.0, -1.0)
    unrelated = IntentScore("x", "adjust", True, True, 0.0, 0.0)
    missed = IntentScore("x", "selective_adjust", True, False, None, 0.0)
    assert [tool_loss(s) for s in (opposite, unrelated, missed)] == [1.0, 0.5, 1.0]


def test_mean_is_the_papers_rule_most_flagged_first() -> None:
    chosen = select_sources(scores(), MiningConfig())
    # One flag each: by key.
    assert chosen.sources == ["b", "c", "d", "e"]
    assert chosen.by_tool == {"adjust": 2, "filter": 2}


def test_margin_moves_the_vector_tools_threshold_only() -> None:
    # margin .1: threshold .45, still c and d; the filter flags b and e as before.
    small = select_sources(scores(), MiningConfig(strategy=MiningStrategy.MARGIN, margin=0.1))
    assert set(small.sources) == {"b", "c", "d", "e"}
    # margin .6: threshold -.05: c (-.2) only; d (0) is no longer flagged. Order: one flag each,
    # then the larger loss: b .4, e .367, c .2.
    large = select_sources(scores(), MiningConfig(strategy=MiningStrategy.MARGIN, margin=0.6))
    assert large.sources == ["b", "e", "c"]
    assert large.by_tool == {"adjust": 1, "filter": 2}
    # margin 0 is the paper's rule.
    zero = select_sources(scores(), MiningConfig(strategy=MiningStrategy.MARGIN, margin=0.0))
    assert set(zero.sources) == set(select_sources(scores(), MiningConfig()).sources)


@pytest.mark.parametrize("percent,expected", [
    (40, ["b", "e"]),                 # 2 of 5
    (50, ["b", "e", "d"]),            # 2.5, rounded half up: 3
    (20, ["b"]),                      # 1
    (1, ["b"]),                       # 0.05: at least one
    (100, ["b", "e", "d", "c"]),      # a (loss 0) is never sent
])
def test_worst_takes_the_largest_losses(percent: float, expected: list[str]) -> None:
    chosen = select_sources(scores(), MiningConfig(strategy=MiningStrategy.WORST,
                                                   worst_percent=percent))
    assert chosen.sources == expected


def test_worst_counts_what_the_papers_rule_flags_among_its_choice() -> None:
    chosen = select_sources(scores(), MiningConfig(strategy=MiningStrategy.WORST,
                                                   worst_percent=60))
    assert chosen.sources == ["b", "e", "d"]
    assert chosen.by_tool == {"adjust": 1, "filter": 2}      # d; b and e


@pytest.mark.parametrize("n,percent,expected", [
    (10, 25, 3), (10, 24, 2), (10, 15, 2), (10, 14.9, 1), (7, 50, 4), (200, 14.5, 29),
    (3, 1, 1), (0, 50, 0), (8, 12.5, 1), (1000, 0.05, 1), (1000, 0.15, 2),
])
def test_worst_count_rounds_half_up(n: int, percent: float, expected: int) -> None:
    assert augment.worst_count(n, percent) == expected


def test_slices_send_the_flagged_slices_intents_in_order() -> None:
    class Found:
        def __init__(self, flagged: bool, keys: tuple[str, ...]):
            self.flagged, self.intent_keys = flagged, keys

    chosen = select_sources(scores(), MiningConfig(strategy=MiningStrategy.SLICES),
                            [Found(True, ("d", "c")), Found(False, ("a",)), Found(True, ("b",))])
    assert chosen.sources == ["d", "c", "b"]
    assert chosen.by_tool == {"adjust": 2, "filter": 1}


@pytest.mark.parametrize("settings,message", [
    ({"strategy": "best"}, "unknown mining strategy 'best'"),
    ({"margin": -0.1}, "margin must be in"),
    ({"worst_percent": 0}, "worst_percent must be in"),
    ({"worst_percent": 101}, "worst_percent must be in"),
    ({"clusters": 1}, "at least 2 clusters"),
    ({"slice_gap": 1.5}, "slice_gap must be in"),
])
def test_mining_settings_are_checked(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(WorkbenchError, match=message):
        MiningConfig(**settings)


def test_a_strategy_given_by_name_becomes_the_enum() -> None:
    assert MiningConfig(strategy="worst").strategy is MiningStrategy.WORST  # type: ignore[arg-type]
    with pytest.raises(WorkbenchError, match="MiningConfig"):
        augment.AugmentConfig(mining={"strategy": "worst"})  # type: ignore[arg-type]


def test_an_augment_job_carries_the_mining_settings() -> None:
    from workbench.app.jobs import build_config

    built = build_config("augment", {"run_id": "r", "mining": {"strategy": "slices",
                                                               "clusters": 4}})
    assert built.mining == MiningConfig(strategy=MiningStrategy.SLICES, clusters=4)
    with pytest.raises(WorkbenchError, match="worst_percent"):
        build_config("augment", {"run_id": "r", "mining": {"worst_percent": 0}})


# ------------------------------------------------------------------------------ end to end

@pytest.fixture(scope="module")
def encoder() -> Any:
    from workbench.embeddings import load_encoder

    return load_encoder()


@pytest.fixture(scope="module")
def mined_world(tmp_path_factory: pytest.TempPathFactory, encoder: Any) -> tuple[Path, str]:
    """The tiny world with a one-epoch heads run (wrong on much of its training split)."""
    from pipelines import train

    folder = tmp_path_factory.mktemp("mining")
    store = curated_store(folder)
    run = train.run(train.TrainConfig(student="heads", student_config={
        "epochs": 1, "hidden": 8, "device": "cpu"}), store, encoder=encoder)
    return folder / "w.duckdb", run.run_id


def test_each_strategy_mines_the_run_and_says_which(mined_world, encoder, tmp_path) -> None:
    import shutil

    from pipelines.slices import compute_slices
    from workbench.paraphrase.offline import OfflineParaphraser
    from workbench.slices import stored_scores
    from workbench.store import Store, evaluations

    path = tmp_path / "w.duckdb"
    shutil.copy(mined_world[0], path)
    store = Store(path)
    run_id = mined_world[1]
    for strategy in MiningStrategy:
        mining = MiningConfig(strategy=strategy, worst_percent=30, slice_gap=0.0, clusters=3)
        try:
            result = augment.run(augment.AugmentConfig(run_id=run_id, n=2, mining=mining),
                                 store, encoder=encoder, paraphraser=OfflineParaphraser(seed=1))
        except WorkbenchError as error:     # slices: the run may have no slice below itself
            assert strategy is MiningStrategy.SLICES and "no slice" in str(error)
            continue
        assert result.strategy == strategy.value
        evaluation_id = result.mining_evaluation_id
        assert evaluation_id is not None
        with store.session() as session:
            stored = stored_scores(evaluations.evaluation_intent_scores(session, evaluation_id))
            paper = evaluations.flagged_intents(session, evaluation_id)
            by_tool = evaluations.flags_by_tool(session, evaluation_id)
        # The strategy's choice is a function of the stored mining evaluation (and, for
        # slices, of the same clustering).
        found = compute_slices(store, evaluation_id=evaluation_id, encoder=encoder, k=3,
                               gap=0.0).slices if strategy is MiningStrategy.SLICES else []
        expected = select_sources(stored, mining, found)
        assert result.n_flagged == result.n_sources == len(expected.sources) > 0
        assert result.flagged_by_tool == expected.by_tool
        if strategy is MiningStrategy.MEAN:
            # Today's behaviour: the stored flags, in the stored order.
            assert expected.sources == paper and result.flagged_by_tool == by_tool
        if strategy is MiningStrategy.WORST:
            wrong = sum(loss > 0 for loss in intent_losses(stored).values())
            assert result.n_flagged == min(wrong, augment.worst_count(15, 30)) == min(wrong, 5)
