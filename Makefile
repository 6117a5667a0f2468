# The book's two commands: `make book` and `make test`. Both create .venv if missing and
# install the package with its extras, pinned by constraints.txt, so nothing is installed by hand.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PIP    := $(BIN)/python -m pip
NBVAL  := --nbval --nbval-current-env --nbval-sanitize-with book/sanitize.cfg

.PHONY: all install book test test-unit test-book lab study bench clean

all: test

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet -c constraints.txt -e '.[book,test]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (lfl_lib)" >/dev/null
	@touch $@

install: $(STAMP)

book: $(STAMP)
	$(BIN)/jupyter-book build . -W --keep-going

test-unit: $(STAMP)
	$(BIN)/python -m pytest tests/ -q

test-book: $(STAMP)
	$(BIN)/python -m pytest $(NBVAL) book/ -q

test: test-unit test-book

lab: $(STAMP)
	$(BIN)/jupyter lab book/

clean:
	rm -rf _build .pytest_cache .hypothesis
