# Set-up is part of every target: a fresh machine needs only `make miniature` and `make test`.
VENV ?= .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-lock.txt | cksum | cut -d' ' -f1)

.PHONY: lock-requirements setup miniature test lint format report plan lock install-profile clean-miniature resolve-envs lock-envs rule-venvs vllm-reader

# torch's CPU build by name, wherever this runs: `torch==2.13.0` from PyPI is the Linux CUDA build
# (13 nvidia packages, cuda-toolkit, triton: ~2.8 GB against 192 MB). A `+cpu` version exists only
# on PyTorch's CPU index (TORCH_INDEX) or in a local wheel directory of pip's configuration, so no
# index can hand out the CUDA build. --no-deps: only torch itself is asked of TORCH_INDEX (its
# dependencies come with requirements.txt next); --retries 2: where TORCH_INDEX is unreachable pip
# warns and goes on within a second instead of retrying with backoff for each page.
TORCH ?= torch==2.13.0+cpu
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
PIP := $(BIN)/pip --disable-pip-version-check
PIP_TORCH := install --quiet --no-deps --retries 2 --extra-index-url $(TORCH_INDEX) "$(TORCH)"

# The rest with uv, held to pip's resolution (requirements-lock.txt): uv alone resolves some
# transitive packages differently (lm_eval's pytablewriter 0.38 instead of 1.2). --compile-bytecode:
# pip compiles on install, uv does not unless asked.
$(STAMP): requirements.txt requirements-lock.txt
	python3 -m venv $(VENV)
	$(PIP) $(PIP_TORCH) "$$(grep '^uv==' requirements.txt)"
	$(BIN)/uv pip install --quiet --python $(BIN)/python --compile-bytecode -r requirements.txt -c requirements-lock.txt
	touch $(STAMP)

# requirements-lock.txt again from requirements.txt, as pip resolves it (a scratch venv, ~2 min).
LOCK_VENV ?= .lock-venv
lock-requirements:
	rm -rf $(LOCK_VENV) && python3 -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip $(PIP_TORCH)
	$(LOCK_VENV)/bin/pip install --quiet -r requirements.txt
	{ sed -n '/^#/p' requirements-lock.txt; $(LOCK_VENV)/bin/pip freeze --exclude torch --exclude-editable; } > requirements-lock.txt.tmp
	mv requirements-lock.txt.tmp requirements-lock.txt && rm -rf $(LOCK_VENV)

setup: $(STAMP)

# The whole DAG on CPU with tiny models and the fixture corpus; outputs under miniature/.
miniature: $(STAMP)
	$(BIN)/snakemake --profile profiles/miniature

# Unit tests, an end-to-end miniature run in a scratch copy, lint and format checks.
test: $(STAMP)
	$(BIN)/pytest -q --durations=15 tests

# The hooks of .pre-commit-config.yaml over the whole tree: snakemake --lint, snakefmt --check,
# ruff check, ruff format --check (local hooks with .venv's executables: offline).
lint: $(STAMP)
	$(BIN)/pre-commit run --all-files

format: $(STAMP)
	$(BIN)/snakefmt .
	$(BIN)/ruff format .

report: $(STAMP)
	$(BIN)/snakemake --profile profiles/miniature --report miniature/report.html

# Before a paper run: per rule the Slurm jobs and GPU-hours of config.yaml (offline dry run).
plan: $(STAMP)
	$(BIN)/python scripts/plan_run.py

# With Hub access, before a paper run: pin every input to a commit (inputs.lock.yaml) and list every
# FineWeb2 file with size and sha256 (the manifest). Commit both.
lock: $(STAMP)
	$(BIN)/python scripts/lock_inputs.py

# Once per account: Snakemake looks for a named profile in ~/.config/snakemake, so that
# `snakemake --profile slurm` finds profiles/slurm (a link: edits here apply there).
PROFILE_HOME := $${XDG_CONFIG_HOME:-$$HOME/.config}/snakemake
install-profile:
	mkdir -p "$(PROFILE_HOME)"
	ln -sfn "$(abspath profiles/slurm)" "$(PROFILE_HOME)/slurm"

clean-miniature:
	rm -rf miniature

# The paper run's conda envs (README "Environments"): envs/source/<name>.yaml is what a person edits;
# envs/<name>.yaml, which the rules name, is its lock. Resolution: linux x86_64, metadata only.
resolve-envs: $(STAMP)
	$(BIN)/python scripts/envs.py resolve

lock-envs: $(STAMP)
	$(BIN)/python scripts/envs.py lock

# A venv per CPU env from its lock (developers: import checks, tests/test_envs.py with
# DEFINEMED_RULE_VENVS=$(RULE_VENVS)), and the vLLM env's transformers on CPU torch, which
# tests/test_envs.py and tests/test_chat.py load merged models and render prompts with.
# CI runs the miniature through Snakemake's own conda deployment instead (--sdm conda, the conda
# stand-in tests/support/overlays/conda_standin creates each env as a venv the same way: README
# "Environments").
RULE_VENVS ?= .envs
CPU_ENVS := data hub judge paper merge transformers train
rule-venvs: $(STAMP) vllm-reader
	$(BIN)/python scripts/envs.py build --torch-index $(TORCH_INDEX) $(RULE_VENVS) $(CPU_ENVS)

vllm-reader: $(STAMP)
	$(BIN)/python scripts/envs.py build-vllm-reader --torch-index $(TORCH_INDEX) $(RULE_VENVS)
