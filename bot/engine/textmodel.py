"""Short texts classified by their n-grams: fitted with scikit-learn, scored directly.

The cause reader (`classifier.py`) and the crisis reader (`crisis.py`) share one shape,
the classic, proven pipeline for short texts: TF-IDF over character n-grams (1–3,
within word boundaries, so Chinese needs no segmentation) plus Latin word uni- and
bigrams, each vectorizer normalised on its own so the few word n-grams weigh as much as
the many character ones, into a logistic regression.

scikit-learn fits it. Scoring one message through the pipeline costs about 6 ms of
per-call checks and conversions (most of a dialog step), while the sums themselves are
microseconds: `LinearTextModel` keeps each vectorizer's analyzer, IDF and the
regression's weights and does those sums directly. `tests/test_textmodel.py` holds the
two equal. Pure: no files, no clock, no randomness (the solvers are deterministic).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

Analyzer = Callable[[str], list[str]]
T = TypeVar("T")


def make_pipeline(
    *, c: float, min_df: int, word_pattern: str, solver: str, class_weight: str | None = None
) -> Pipeline:
    """The n-gram TF-IDF union into a logistic regression (scikit-learn, imported on use)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline as chain
    from sklearn.pipeline import make_union

    return chain(
        make_union(
            TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True, min_df=min_df),
            TfidfVectorizer(
                analyzer="word", ngram_range=(1, 2), sublinear_tf=True, token_pattern=word_pattern, min_df=min_df
            ),
        ),
        LogisticRegression(C=c, class_weight=class_weight, solver=solver),
    )


def fit(pipeline: Pipeline, texts: Sequence[str], labels: Sequence[Any]) -> Pipeline:
    """Fit `pipeline` on one thread: BLAS threads fight each other on a problem this small
    (one thread trains about four times faster)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        pipeline.fit(list(texts), list(labels))
    return pipeline


class LinearTextModel:
    """A fitted pipeline's probabilities, computed without scikit-learn's per-call overhead."""

    def __init__(self, pipeline: Pipeline) -> None:
        union, regression = pipeline[0], pipeline[-1]
        self.classes: tuple[Any, ...] = tuple(regression.classes_)
        coef, intercept = regression.coef_, regression.intercept_
        # A binary regression keeps one row of weights, for the second class.
        self._binary = coef.shape[0] == 1
        self._intercept = tuple(float(b) for b in intercept)
        self._parts: list[tuple[Analyzer, dict[str, tuple[float, tuple[float, ...]]]]] = []
        offset = 0
        for _, vectorizer in union.transformer_list:
            weights = {
                term: (float(vectorizer.idf_[column]), tuple(float(w) for w in coef[:, offset + column]))
                for term, column in vectorizer.vocabulary_.items()
            }
            self._parts.append((vectorizer.build_analyzer(), weights))
            offset += len(vectorizer.vocabulary_)

    def probabilities(self, text: str) -> tuple[float, ...]:
        """Each class's probability for `text` (prepared as the training texts were), in `classes` order."""
        scores = list(self._intercept)
        for analyze, weights in self._parts:
            counts: dict[str, int] = {}
            for gram in analyze(text):
                if gram in weights:
                    counts[gram] = counts.get(gram, 0) + 1
            squares = 0.0
            dots = [0.0] * len(scores)
            for gram, count in counts.items():
                idf, row = weights[gram]
                value = (1.0 + math.log(count)) * idf  # sublinear TF × IDF
                squares += value * value
                for k, weight in enumerate(row):
                    dots[k] += value * weight
            if squares:
                norm = math.sqrt(squares)  # each vectorizer is L2-normalised on its own
                scores = [score + dot / norm for score, dot in zip(scores, dots, strict=True)]
        if self._binary:
            yes = 1.0 / (1.0 + math.exp(-scores[0])) if scores[0] > -500 else 0.0
            return (1.0 - yes, yes)
        top = max(scores)
        exps = [math.exp(score - top) for score in scores]
        total = sum(exps)
        return tuple(e / total for e in exps)


class ModelCache:
    """Trained models kept in-process by their training data's fingerprint, so building the
    same dialogs twice (tests, a reload) trains once. A few entries: a model is ~1 MB."""

    def __init__(self, size: int = 4) -> None:
        self._size = size
        self._models: dict[Hashable, Any] = {}

    def get(self, key: Hashable, build: Callable[[], T]) -> T:
        """The model for `key`, built by `build()` the first time."""
        if key not in self._models:
            if len(self._models) >= self._size:
                self._models.pop(next(iter(self._models)))
            self._models[key] = build()
        model: T = self._models[key]
        return model
