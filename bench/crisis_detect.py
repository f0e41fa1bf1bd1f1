"""Crisis detector: cross-validated figures, the test corpus, and detect() speed.

    .venv/bin/python bench/crisis_detect.py [--runs R]

Prints, from the dialogs as the bot loads them:
- the training examples' sizes and the classifier's training time (median of R runs);
- 5-fold cross-validated recall and false alarms of the detector (words OR classifier)
  and of the classifier alone, at several thresholds, with the threshold the rule picks
  (the lowest with at most 5% false alarms on all ordinary examples, as the test
  corpus allows); THRESHOLD in bot/engine/crisis.py is set from it;
- recall and false alarms on tests/data/crisis_corpus.yaml (never trained on), and on
  its held-out `unseen` rounds;
- the median time of one detect() on a 50-character message.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import yaml

from bot.engine.crisis import THRESHOLD, CrisisConfig, CrisisDetector, CrisisModel, cross_validate, spec_examples
from bot.spec.loader import load_dialogs

ROOT = Path(__file__).resolve().parent.parent
MAX_FALSE_ALARMS = 0.05
MESSAGES = [
    "银行天天打电话催我还款，我真的不知道该怎么办了，压力好大，感觉快撑不住了呢",
    "I lost my job in March and the card bills kept piling up, what should I do now",
    "我怕我会做傻事，欠了二十多万，家里人还不知道，每天晚上都睡不着觉，好难受啊",
    "the collector called my mum again today and I feel like a total failure honestly",
]


def _figures(detector: CrisisDetector, texts: list[str]) -> tuple[int, int]:
    return sum(detector.detect(t) for t in texts), len(texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    spec = load_dialogs(ROOT / "dialogs")
    crisis, ordinary = spec_examples(spec)
    config = CrisisConfig.from_keywords(spec.crisis.keywords)
    not_crisis = {t for items in spec.crisis.examples.get("not_crisis", {}).values() for t in items}
    print("training examples:")
    for lang in crisis:
        own = len(spec.crisis.examples.get("not_crisis", {}).get(lang, ()))
        print(f"  {lang}: {len(crisis[lang])} crisis, {own} not_crisis + {len(ordinary[lang]) - own} cause stories")

    CrisisModel(crisis, ordinary, config.harmless)  # imports scikit-learn: not part of the figure
    times = []
    for _ in range(args.runs):
        began = time.process_time()  # CPU time: other load on the machine does not count
        model = CrisisModel(crisis, ordinary, config.harmless)
        times.append(time.process_time() - began)
    print(f"training: median {statistics.median(times) * 1000:.0f} ms (CPU) over {args.runs} runs")

    detector = CrisisDetector(config, model)
    result = cross_validate(detector, crisis, ordinary)
    stories = {t for t in result.texts if t not in not_crisis}
    chosen = result.threshold_for(MAX_FALSE_ALARMS)
    print("")
    print("cross-validated (5 folds): recall on crisis examples, false alarms on ordinary ones")
    print("  threshold  recall  zh     en     | false alarms  not_crisis  cause stories | classifier alone")
    for threshold in sorted({0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, chosen, THRESHOLD}):
        recall, alarms = result.rates(threshold)
        zh, en = result.rates(threshold, "zh")[0], result.rates(threshold, "en")[0]
        own = result.rates(threshold, among=not_crisis | set(crisis.get("zh", ())) | set(crisis.get("en", ())))[1]
        story = result.rates(threshold, among=stories)[1]
        alone = result.rates(threshold, words=False)
        mark = " <- THRESHOLD" if threshold == THRESHOLD else (" <- rule" if threshold == chosen else "")
        print(
            f"  {threshold:.2f}       {recall:.3f}   {zh:.3f}  {en:.3f}  | {alarms:.3f}         {own:.3f}       "
            f"{story:.3f}         | {alone[0]:.3f} / {alone[1]:.3f}{mark}"
        )
    words_only = result.rates(1.01)
    print(f"  words alone: recall {words_only[0]:.3f}, false alarms {words_only[1]:.3f}")
    print(f"  rule (at most {MAX_FALSE_ALARMS:.0%} false alarms): threshold {chosen:.2f}; THRESHOLD is {THRESHOLD:.2f}")

    corpus: dict[str, Any] = yaml.safe_load((ROOT / "tests" / "data" / "crisis_corpus.yaml").read_text("utf-8"))
    words = CrisisDetector(config)
    print("")
    print("test corpus (never trained on):   words OR classifier   words alone")
    rows = [
        ("crisis zh", corpus["crisis"]["zh"]),
        ("crisis en", corpus["crisis"]["en"]),
        ("lookalikes", corpus["harmless"]["zh"] + corpus["harmless"]["en"]),
        ("unseen crisis", corpus["unseen"]["crisis"]),
        ("unseen lookalikes", corpus["unseen"]["harmless"]),
    ]
    if "unseen_2" in corpus:
        rows += [
            ("unseen 2 crisis", corpus["unseen_2"]["crisis"]),
            ("unseen 2 lookalikes", corpus["unseen_2"]["harmless"]),
        ]
    for name, texts in rows:
        found, total = _figures(detector, texts)
        alone, _ = _figures(words, texts)
        print(f"  {name:<20} {found:>3}/{total:<3}              {alone:>3}/{total}")

    print("")
    messages = [(message * 2)[:50] for message in MESSAGES]  # exactly 50 characters each
    samples = []
    for _ in range(args.runs):
        for message in messages:
            began = time.process_time()
            for _ in range(200):
                detector.detect(message)
            samples.append((time.process_time() - began) / 200)
    print(f"detect() on a 50-character message: median {statistics.median(samples) * 1e6:.0f} µs")


if __name__ == "__main__":
    main()
