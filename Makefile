# Two commands on a fresh clone: `make chat` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
ARGS   ?=

.PHONY: chat test lint i18n validate bench bench-engine bench-store bench-webhook clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

chat: $(STAMP)
	$(PY) -m bot chat $(ARGS)

lint: $(STAMP)
	$(PY) -m ruff check bot tests bench
	$(PY) -m ruff format --check bot tests bench
	$(PY) -m mypy bot

validate: $(STAMP)
	$(PY) -m bot validate

test: lint validate
	$(PY) -m pytest -q $(ARGS)

# extract -> update -> (translate the .po) -> compile
i18n: $(STAMP)
	$(VENV)/bin/pybabel extract -F babel.cfg -o locales/messages.pot --omit-header --no-location .
	$(VENV)/bin/pybabel update -i locales/messages.pot -d locales -l zh_CN --no-fuzzy-matching
	$(VENV)/bin/pybabel update -i locales/messages.pot -d locales -l en --no-fuzzy-matching
	$(VENV)/bin/pybabel compile -d locales --statistics

# Benchmarks print figures; none of them is a pass/fail test.
bench: bench-engine bench-store bench-webhook

bench-engine: $(STAMP)
	$(PY) bench/engine_steps.py

bench-store: $(STAMP)
	$(PY) bench/store_ops.py

bench-webhook: $(STAMP)
	$(PY) bench/webhook_throughput.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
