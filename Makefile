# The book's two commands: `make book` and `make test`. Both create .venv if missing and
# install the package with its extras, pinned by constraints.txt, so nothing is installed by hand.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PIP    := $(BIN)/python -m pip
NBVAL  := --nbval --nbval-current-env --nbval-sanitize-with book/sanitize.cfg
# MKL's AVX2 code path on every x86-64 CPU (Intel's AVX-512 path rounds differently), as
# `import lfl_lib` sets it (lfl_lib/code_paths.py); a value set by the caller wins.
export MKL_CBWR ?= AVX2

.PHONY: all install book test test-unit test-book test-quick test-portable check lint browser-deps browser-test exec-times lab study bench bench-tabular table2-data clean

all: test

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet -c constraints.txt -e '.[book,test,minari,sb3,dev]'
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

# The unit tests without those marked slow (the study's smoke runs, 20 s or more each): a few minutes.
test-quick: $(STAMP)
	$(BIN)/python -m pytest tests/ -q -m "not slow"

# The linters (pinned in constraints.txt): ruff's lint rules and mypy's type check of lfl_lib.
lint: $(STAMP)
	$(BIN)/ruff check lfl_lib tests scripts benchmarks
	$(BIN)/ruff format --check lfl_lib tests scripts benchmarks
	$(BIN)/mypy

# The CPU-sensitive tests and notebooks again under the BLAS code paths of other x86-64 CPUs
# (MKL_CBWR, OPENBLAS_CORETYPE, ONEDNN_MAX_CPU_ISA), those this CPU lacks skipped: a few minutes.
test-portable: $(STAMP)
	$(BIN)/python scripts/test_portable.py

# make lint, then, after `make book`: every page's prose has no typed number (glued or the paper's,
# see book/notation.md; make test runs the same check in tests/test_prose_numbers.py), a nitpicky
# rebuild (-n: every cross-reference must resolve), then a crawl of _build/html (every internal
# href/src resolves; nothing is loaded from the network).
check: lint
	$(BIN)/python scripts/prose_numbers.py
	$(BIN)/jupyter-book build . -W -n --keep-going --all
	$(BIN)/python scripts/check_html.py _build/html

# Debian's chromium + chromium-driver for the real-browser test (apt-get, as root or with
# sudo); if they cannot be installed, the browser test is skipped with a message.
browser-deps:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then \
	  echo "chromium and chromedriver: installed"; \
	else \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO="sudo -n"; \
	  { $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; } \
	  || echo "WARNING: could not install chromium + chromium-driver: the browser test will be skipped"; \
	fi

# After `make book`: every page of _toc.yml opened in headless Chromium (tests_browser/);
# screenshots land in test-output/screenshots/.
browser-test: $(STAMP) browser-deps
	$(BIN)/python -m pytest tests_browser/ -q -rs

# Execute every chapter once, record its wall time in book/data/exec_times.json, then
# re-execute book/reproducibility.ipynb, which shows that file.
exec-times: $(STAMP)
	$(BIN)/python scripts/exec_times.py
	$(BIN)/jupyter nbconvert --to notebook --execute --inplace book/reproducibility.ipynb

lab: $(STAMP)
	$(BIN)/jupyter lab book/

# One paper-scale run of the MuJoCo study (resumable: run it again after an interruption),
# e.g. make study ENV=HalfCheetah-v5 SEED=1; PRESET=smoke for the one-minute version;
# ESTIMATOR=fix for the fix of chapter 6 (it reuses the learner of the paper run of the
# same environment and seed when that run's folder is there).
ENV       ?= Reacher-v5
SEED      ?= 0
PRESET    ?= paper
ESTIMATOR ?= paper
PAPER_RUN  = runs/mujoco/$(ENV)_seed$(SEED)_$(PRESET)
study: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/lfl study --env $(ENV) --seed $(SEED) --preset $(PRESET) \
	  --estimator $(ESTIMATOR) $(if $(and $(filter-out paper,$(ESTIMATOR)),$(wildcard $(PAPER_RUN)/learner.pt)),--learner-from $(PAPER_RUN))

# PPO throughput: ours vs raw vector-env stepping vs Stable-Baselines3 (needs the bench extra).
bench: $(STAMP)
	$(PIP) install --quiet -c constraints.txt -e '.[bench]'
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/bench_ppo.py

# Tabular Algorithm 1 (chapter 5): one run and the whole Table 2 at 10 runs.
bench-tabular: $(STAMP)
	$(BIN)/python benchmarks/bench_tabular.py

# Chapter 5's precomputed data under book/data/tabular/ (about 20 min on 2 cores):
# Table 2 at 100 runs, the ablations, the estimator study on held-out seeds.
table2-data: $(STAMP)
	$(BIN)/lfl table2 table --runs 100
	$(BIN)/lfl table2-study ablations --runs 10
	$(BIN)/lfl table2-study study --runs 20
	OPENBLAS_NUM_THREADS=1 $(BIN)/lfl table2-extended table --runs 100
	OPENBLAS_NUM_THREADS=1 $(BIN)/lfl table2-extended criteria --runs 10 --first-seed 1000

clean:
	rm -rf _build .pytest_cache .hypothesis

# A grid of study runs as Ray tasks (lfl sweep, lfl_lib.experiments.sweep; installs the sweep extra). Local Ray with one
# run per core by default; ADDRESS=host:port joins a running cluster (see README). Resumable: the
# same command again skips finished runs and resumes the others. Results land where make study
# puts them. E.g. make sweep ENVS="Reacher-v5 Hopper-v5" SEEDS="0..4" ESTIMATORS="paper fix"
.PHONY: sweep test-sweep
ENVS       ?= Reacher-v5 Hopper-v5 HalfCheetah-v5 Ant-v5
SEEDS      ?= 0 1 2
ESTIMATORS ?= paper
SWEEP_ARGS ?=
sweep: $(STAMP)
	$(PIP) install --quiet -c constraints.txt -e '.[sweep]'
	OMP_NUM_THREADS=1 $(BIN)/lfl sweep --env $(ENVS) --seed $(SEEDS) --estimator $(ESTIMATORS) \
	  --preset $(PRESET) $(if $(ADDRESS),--address $(ADDRESS)) $(if $(WORKERS),--workers $(WORKERS)) $(SWEEP_ARGS)

# The sweep's tests on a local Ray instance (a smoke sweep killed and resumed, a failing run): minutes.
test-sweep: $(STAMP)
	$(PIP) install --quiet -c constraints.txt -e '.[sweep]'
	LFL_SWEEP_TESTS=1 OMP_NUM_THREADS=1 $(BIN)/python -m pytest tests/test_sweep.py -q

# Mutation score of the modules that carry the paper's mathematics (needs the mutation extra;
# outside make test: about an hour on 2 cores). Writes book/data/mutation/<module>.json;
# book/repro_mutation.ipynb shows them. make mutation MODULES="shaping inversion" for a subset.
MODULES ?=
.PHONY: mutation
mutation: $(STAMP)
	$(PIP) install --quiet -c constraints.txt -e '.[mutation]'
	OMP_NUM_THREADS=1 nice -n 10 $(BIN)/python scripts/mutation.py $(MODULES)

# The learner logs of chapter 9 (lfl_lib.experiments.learner_logs): the study's PPO learners trained
# to 1.5x their last observed update, every update kept. One run per core (xargs -P 2), resumable:
# the same command again skips finished runs and resumes the others. On one core each, alone on
# the machine: about 10 min (Reacher, HalfCheetah) to 25 min (Ant); Hopper took 14-45 min on a shared one. E.g. make learner-logs ENVS="Hopper-v5" SEEDS="0 1 2 3 4"
.PHONY: learner-logs reward-bench reward-observers
learner-logs: $(STAMP)
	for e in $(ENVS); do for s in $(SEEDS); do echo $$e $$s; done; done | \
	  OMP_NUM_THREADS=1 xargs -P 2 -n 2 sh -c 'test -f book/data/learner_logs/$$0_seed$$1.json || \
	  $(BIN)/python -m lfl_lib.experiments.learner_logs --env $$0 --seed $$1 --no-progress'

# The reward benchmark of chapter 9 on the learner logs above (no RL; minutes per reward and run).
REWARDS ?= true trex lfl lfl-state bc
reward-bench: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m lfl_lib.experiments.reward_bench --rewards $(REWARDS) --envs $(ENVS) --seeds $(SEEDS)

# Observers on T-REX's reward (chapter 9): one per (env, seed), both cores, resumable; 5-25 min each.
TERMINAL ?= absorbing
reward-observers: $(STAMP)
	for e in $(ENVS); do for s in $(SEEDS); do echo $$e $$s; done; done | \
	  OMP_NUM_THREADS=1 xargs -P 2 -n 2 sh -c '$(BIN)/python -m lfl_lib.experiments.reward_observers --rewards trex \
	  --terminal $(TERMINAL) --envs $$0 --seeds $$1 --no-progress'
