# Two commands on a fresh clone: `make chat` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
ARGS   ?=

.PHONY: chat test lint i18n validate bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

chat: $(STAMP)
	$(PY) -m bot chat $(ARGS)

lint: $(STAMP)
	$(PY) -m ruff check bot tests bench
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

bench: $(STAMP)
	$(PY) bench/engine_steps.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
