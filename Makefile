# Every target creates or reuses the virtualenv in $(VENV) with everything installed (the dev extra
# includes the emulator's); only Python 3.11+ and make are needed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck docs unit bench soak clean glob-corpus

# The virtualenv remembers which Python made it (major.minor): another one (PYTHON=python3.12, a
# newer system Python, a failed first run with 3.10) rebuilds it instead of failing until
# `make clean`, and says so.
PY_VERSION := $(shell $(PYTHON) -c 'import sys; print(*sys.version_info[:2], sep=".")' 2>/dev/null)
MADE_BY := $(VENV)/.made-by-python-$(PY_VERSION)

$(MADE_BY):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
		echo "$(PYTHON) is Python $(or $(PY_VERSION),?): polaris-reconciler needs 3.11 or later;" \
			"run make PYTHON=python3.11 (or newer)"; exit 1; }
	@if [ -x $(BIN)/python ] && [ "$$($(BIN)/python -c 'import sys; print(*sys.version_info[:2], sep=".")' 2>/dev/null)" != "$(PY_VERSION)" ]; then \
		echo "$(VENV) was made by another Python than $(PYTHON) ($(PY_VERSION)): rebuilding it"; \
		rm -rf $(VENV); \
	fi
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@rm -f $(VENV)/.made-by-python-* && touch $@

$(STAMP): pyproject.toml $(MADE_BY)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	@$(BIN)/python scripts/demo.py

# The checks run beside the tests, which leave a core idle whenever a test waits: each target's
# output is printed whole as it ends (the checks' first, the tests' last), and any failure fails
# make test with its message (--keep-going: every failure, not the first). `make lint` (or
# typecheck, docs, unit) still runs one alone.
test: $(STAMP)
	@$(MAKE) --no-print-directory -j4 --keep-going --output-sync=target lint typecheck docs unit

lint: $(STAMP)
	$(BIN)/ruff check reconciler tests benchmarks scripts
	$(BIN)/ruff format --check reconciler tests benchmarks scripts
	$(BIN)/lint-imports
	$(BIN)/actionlint -shellcheck=$(BIN)/shellcheck examples/github/*.yml .github/workflows/*.yml

typecheck: $(STAMP)
	$(BIN)/mypy

# --strict: a broken link or a missing page fails the build (never add -q:
# it hides the warnings that --strict counts). The site goes to site/, outside docs/.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

# worksteal: a worker that runs out takes tests queued on the other, so one long test (schemathesis,
# the workflow runs) does not leave a core idle at the end.
# compileall first: the tests start hundreds of interpreters (the CLI, the emulator, the CI
# examples' steps), and where imports write no bytecode (PYTHONDONTWRITEBYTECODE is set) each
# one would compile the package again: a quarter of the CPU of tests/docs.
unit: $(STAMP)
	@$(BIN)/python -m compileall -q reconciler tests
	$(BIN)/python -m pytest -n auto --dist worksteal -m "not slow"

bench: $(STAMP)
	$(BIN)/python -m benchmarks

soak: $(STAMP)
	$(BIN)/python -m pytest -m slow

# Java's verdicts on random glob patterns and keys (tests/identity/test_java_glob_corpus.py reads them;
# needs a JDK, the tests do not). Same seed, same JDK: the same file.
GLOB_CORPUS := tests/reference/java-glob-corpus.jsonl.gz
glob-corpus:
	@mkdir -p $(VENV)/glob-corpus
	javac -d $(VENV)/glob-corpus scripts/glob_corpus/GlobCorpus.java
	java -cp $(VENV)/glob-corpus GlobCorpus 16 4500 | gzip -n -9 > $(GLOB_CORPUS)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
