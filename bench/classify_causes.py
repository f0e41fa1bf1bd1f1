"""The cause classifier's cost: what it adds at start, and per story.

    .venv/bin/python -m bench.classify_causes [--runs R]

Prints medians of R runs, in CPU seconds of the measured process (other load on the
machine does not count):
- `build_engine` in a fresh process, with the bundled dialogs and with the same dialogs
  without `examples/` (no classifier): the difference is what the classifier adds at
  start, importing scikit-learn included;
- training alone (the examples already loaded, scikit-learn already imported);
- reading one story (`Diagnoser.read_story`: keywords and classifier) and ranking it,
  over every example story.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bot.engine.classifier import CauseClassifier
from bot.runtime import build_engine, dialogs_dir

_BUILD = (
    "import sys, time\n"
    "from bot.runtime import build_engine\n"
    "began = time.process_time()\n"
    "build_engine(sys.argv[1])\n"
    "print(time.process_time() - began)\n"
)


def _build_seconds(folder: Path) -> float:
    result = subprocess.run(
        [sys.executable, "-c", _BUILD, str(folder)], capture_output=True, text=True, check=True, timeout=120
    )
    return float(result.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    bundled = dialogs_dir()
    with tempfile.TemporaryDirectory() as scratch:
        bare = Path(scratch) / "dialogs"
        shutil.copytree(bundled, bare, ignore=shutil.ignore_patterns("examples", "tests"))
        without = statistics.median(_build_seconds(bare) for _ in range(args.runs))
    with_examples = statistics.median(_build_seconds(bundled) for _ in range(args.runs))
    print(f"build_engine, fresh process, without examples: {without:.2f} s")
    print(f"build_engine, fresh process, with examples:    {with_examples:.2f} s")
    print(f"  the classifier adds at start:                {with_examples - without:.2f} s")

    engine, _ = build_engine(bundled)
    examples = {cause.id: cause.examples for cause in engine.spec.causes}
    stories = [text for by_lang in examples.values() for texts in by_lang.values() for text in texts]
    trainings = []
    for _ in range(args.runs):
        began = time.process_time()
        CauseClassifier(examples)
        trainings.append(time.process_time() - began)
    print(f"training alone ({len(stories)} examples):          {statistics.median(trainings):.2f} s")

    diagnoser = engine.diagnoser
    reads, ranks = [], []
    for story in stories:
        began = time.process_time()
        keys = [e.key for e in diagnoser.read_story(story)]
        middle = time.process_time()
        diagnoser.rank({}, keys)
        reads.append(middle - began)
        ranks.append(time.process_time() - middle)
    print(f"read_story, median over the examples:          {statistics.median(reads) * 1000:.2f} ms")
    print(f"rank with the story's evidence, median:        {statistics.median(ranks) * 1000:.3f} ms")


if __name__ == "__main__":
    main()
