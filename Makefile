# Two commands on a fresh clone: `make chat` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
ARGS   ?=

.PHONY: bench-heldout bench-crisis bench-reminders lock chat test lint i18n validate bench bench-engine bench-store bench-webhook bench-classify eval-causes clean

# Every install is the same: the locked versions, each checked against its hash, then the
# project itself without resolving anything again. `make lock` refreshes the lock files.
$(STAMP): pyproject.toml requirements-test.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r requirements-test.lock
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

LOCK := $(VENV)/bin/pip-compile --quiet --generate-hashes --strip-extras --allow-unsafe \
	--no-emit-index-url --no-emit-find-links

lock: $(STAMP)
	$(PY) -m pip install --quiet 'pip-tools~=7.6'
	$(LOCK) --upgrade --output-file requirements.lock pyproject.toml
	$(LOCK) --upgrade --extra test --output-file requirements-test.lock pyproject.toml

chat: $(STAMP)
	$(PY) -m bot chat $(ARGS)

lint: $(STAMP)
	$(PY) -m ruff check bot tests bench
	$(PY) -m ruff format --check bot tests bench
	$(PY) -m mypy bot

validate: $(STAMP)
	$(PY) -m bot validate

# The suite under coverage (its own process: see [tool.coverage.run] in pyproject.toml);
# below the floor, `make test` fails. Measured 83.2% (76% before issue 8). Raise it as tests grow.
COVERAGE_FLOOR ?= 82

# The cause classifier, cross-validated on dialogs/examples/: fails when a language's
# accuracy drops below the floor (measured 0.83 zh, 0.69 en; see docs/dialogs.md).
CLASSIFIER_FLOOR ?= 0.65

eval-causes: $(STAMP)
	$(PY) -m bot eval-causes --min-accuracy $(CLASSIFIER_FLOOR)

test: lint validate eval-causes
	rm -f .coverage .coverage.*
	$(PY) -m coverage run -m pytest -q $(ARGS)
	$(PY) -m coverage combine -q
	$(PY) -m coverage report --skip-covered --sort=cover --fail-under=$(COVERAGE_FLOOR)

# extract -> update -> (translate the .po) -> compile
i18n: $(STAMP)
	$(VENV)/bin/pybabel extract -F babel.cfg -o locales/messages.pot --omit-header --no-location .
	$(VENV)/bin/pybabel update -i locales/messages.pot -d locales -l zh_CN --no-fuzzy-matching
	$(VENV)/bin/pybabel update -i locales/messages.pot -d locales -l en --no-fuzzy-matching
	$(VENV)/bin/pybabel compile -d locales --statistics

# Benchmarks print figures; none of them is a pass/fail test.
bench: bench-engine bench-store bench-webhook bench-classify

bench-engine: $(STAMP)
	$(PY) -m bench.engine_steps

bench-store: $(STAMP)
	$(PY) -m bench.store_ops

bench-webhook: $(STAMP)
	$(PY) -m bench.webhook_throughput

bench-classify: $(STAMP)
	$(PY) -m bench.classify_causes

# Cases written after the classifiers and parsers were built, never used to tune them.
bench-heldout: $(STAMP)
	$(PY) -m bench.heldout_eval

bench-crisis: $(STAMP)
	$(PY) -m bench.crisis_detect

# 10,000 reminders due at 09:00 through the stand-in Bot API under TELEGRAM_MAX_RATE (about 7 min).
bench-reminders: $(STAMP)
	$(PY) -m bench.reminders_send $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.* htmlcov
