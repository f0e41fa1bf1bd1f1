"""The direct scoring of `LinearTextModel` is exactly scikit-learn's, for both readers."""

from __future__ import annotations

import pytest

from bot.engine.classifier import normalize, train
from bot.engine.engine import Engine

STORIES = [
    "",
    "ok",
    "工厂这两个月没单子，工资只发了一半",
    "I was sure autopay was on, but the card had expired",
    "直播间里一激动就下单了，回过神来已经刷了八千",
    "three cards, a 借呗 loan and my brother's money to pay back",
    "我从来不知道钱花哪去了 lol",
]


def test_the_cause_classifier_scores_as_the_pipeline_would(engine: Engine) -> None:
    model = train({cause.id: cause.examples for cause in engine.spec.causes})
    assert model is not None
    classes = list(model.pipeline.classes_)
    expected = model.pipeline.predict_proba([normalize(text) for text in STORIES])
    for text, row in zip(STORIES, expected, strict=True):
        got = model.probabilities(text)
        assert [got[cause] for cause in classes] == pytest.approx([float(p) for p in row], abs=1e-9)
        assert sum(got.values()) == pytest.approx(1.0)


def test_training_the_same_examples_twice_trains_once(engine: Engine) -> None:
    examples = {cause.id: cause.examples for cause in engine.spec.causes}
    assert train(examples) is train(examples)
