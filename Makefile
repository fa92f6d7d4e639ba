# Every target creates or reuses the virtualenv in $(VENV); only Python 3.11+ and make are needed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench soak clean glob-corpus

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	@$(BIN)/python scripts/demo.py

test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check reconciler tests benchmarks scripts
	$(BIN)/ruff format --check reconciler tests benchmarks scripts
	$(BIN)/actionlint -shellcheck=$(BIN)/shellcheck examples/github/*.yml

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest -n auto -m "not slow"

bench: $(STAMP)
	$(BIN)/python -m benchmarks

soak: $(STAMP)
	$(BIN)/python -m pytest -m slow

# Java's verdicts on random glob patterns and keys (tests/test_java_glob_corpus.py reads them;
# needs a JDK, the tests do not). Same seed, same JDK: the same file.
GLOB_CORPUS := tests/reference/java-glob-corpus.jsonl.gz
glob-corpus:
	@mkdir -p $(VENV)/glob-corpus
	javac -d $(VENV)/glob-corpus scripts/glob_corpus/GlobCorpus.java
	java -cp $(VENV)/glob-corpus GlobCorpus 16 4500 | gzip -n -9 > $(GLOB_CORPUS)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
