# Scones Unlimited image classification: `make` lists the targets.
PYTHON ?= python3.11
VENV := .venv
SAM_VENV := .venv-sam
CHECKOV_VENV := .venv-checkov
HOOKS_VENV := .venv-hooks312
BIN := $(VENV)/bin
# sam build runs pip for the Lambda runtime (python3.12), which must be on PATH.
PY312_DIR ?= $(firstword $(wildcard /root/.pyenv/versions/3.12.*/bin) $(dir $(shell command -v python3.12 2>/dev/null)))
SAM := PATH="$(PY312_DIR):$$PATH" SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam

.DEFAULT_GOAL := help
.PHONY: help install install-sam install-checkov lint validate scan build test workflow demo bench deploy clean docs docs-serve smoke test-stress install-hooks312
# The real CIFAR-100 bicycle/motorcycle images shipped beside the repo, when present; otherwise CIFAR-100 is downloaded.
SOURCE ?= $(firstword $(wildcard ../shared/data/cifar100_bicycle_motorcycle/train))

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

install: $(VENV)/.installed ## Create .venv with the pinned dependencies (constraints.txt)
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip==25.3"
	$(BIN)/pip install --quiet --constraint constraints.txt --editable ".[train,aws,dev]"
	touch $@

install-sam: $(SAM_VENV)/.installed ## Create .venv-sam with the pinned AWS SAM CLI (constraints-sam.txt)
$(SAM_VENV)/.installed: constraints-sam.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade "pip==25.3"
	$(SAM_VENV)/bin/pip install --quiet --constraint constraints-sam.txt aws-sam-cli
	touch $@

install-checkov: $(CHECKOV_VENV)/.installed ## Create .venv-checkov with the pinned checkov (constraints-checkov.txt)
$(CHECKOV_VENV)/.installed: constraints-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --upgrade "pip==25.3"
	$(CHECKOV_VENV)/bin/pip install --quiet --constraint constraints-checkov.txt checkov
	touch $@

install-hooks312: $(HOOKS_VENV)/.installed ## Python 3.12 with only code/requirements.txt (--no-deps) and sagemaker-inference
$(HOOKS_VENV)/.installed: constraints-hooks312.txt $(VENV)/.installed data_prep/packaging.py
	@test -x "$(PY312_DIR)/python3.12" || { echo "install-hooks312: no python3.12 found (the SageMaker image's Python):" \
		"install it (pyenv install 3.12, or apt-get install python3.12) or pass PY312_DIR=/its/bin" >&2; exit 2; }
	rm -rf $(HOOKS_VENV)
	$(PY312_DIR)/python3.12 -m venv $(HOOKS_VENV)
	$(BIN)/python -c "import sys; from data_prep.packaging import inference_code; \
		sys.stdout.buffer.write(inference_code()['requirements.txt'])" > $(HOOKS_VENV)/requirements.txt
	$(HOOKS_VENV)/bin/pip install --quiet --no-deps --requirement $(HOOKS_VENV)/requirements.txt
	$(HOOKS_VENV)/bin/pip install --quiet --constraint constraints-hooks312.txt sagemaker-inference
	touch $@

lint: install ## ruff, mypy, the template checks (see validate) and the docs site (see docs)
	$(BIN)/ruff check .
	$(BIN)/mypy common functions workflow review data_prep monitoring testkit tools bench layers/imaging/imaging layers/driftcheck/driftcheck layers/modelquality/modelquality
	$(MAKE) validate
	$(MAKE) docs

docs: install ## Build the documentation site (docs/, mkdocs.yml) into build/site; strict: a broken link or orphan page fails
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

docs-serve: install ## Serve the documentation site at http://127.0.0.1:8000 with live reload
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

validate: install install-sam install-checkov ## sam validate --lint; cfn-lint and checkov on the transformed template; the ASL
	$(SAM) validate --lint
	$(BIN)/python -m tools.cfn build/cfn
	$(BIN)/cfn-lint build/cfn/transformed.json build/cfn/asl_wrapper.json
	# ES6000 (SQS queue without a redrive policy) is ignored: our only queues are dead-letter queues themselves.
	$(BIN)/cfn-lint --append-rules cfn_lint_serverless.rules --ignore-checks ES6000 --template build/cfn/transformed.json
	$(MAKE) scan

scan: install install-checkov ## checkov on the transformed template: fails on any finding checkov-skips.yaml does not explain
	$(BIN)/python -m tools.cfn build/cfn
	$(BIN)/python -m tools.scanner build/cfn/transformed.json

build: install-sam ## sam build (Lambda packages in .aws-sam/build)
	$(SAM) build
	@du -sh .aws-sam/build/*Function .aws-sam/build/*Layer

test: install install-hooks312 ## Run the test suite (installs Debian's Chromium for the page tests when missing, as root)
	bash tools/ensure_chromium.sh
	$(BIN)/python -m pytest

test-stress: install ## The whole suite 3 times in a row while a CPU burner keeps every core busy; fails if any run fails
	bash tools/ensure_chromium.sh
	$(BIN)/python -m tools.stress --runs 3 -- $(BIN)/python -m pytest -p no:cacheprovider

workflow: install ## The whole workflow offline: dataset, training, endpoint, state machine, summary, report
	$(BIN)/python -m workflow run $(if $(SOURCE),--source $(SOURCE))

demo: install ## Just the state machine offline, against a scripted stand-in endpoint (seconds)
	$(BIN)/python -m workflow demo

bench: install ## Run every benchmark the docs quote (quiet machine, about an hour), record them, rewrite the docs
	bash tools/ensure_debian_tool.sh /usr/bin/wrk "bench.endpoint needs Debian's wrk" "" wrk
	$(BIN)/python -m bench.timed suite --what '`make test`: the whole suite (pytest)' -- $(MAKE) test
	$(BIN)/python -m bench.timed workflow --what '`make workflow` end to end (training, the executions, drift check, report, bucket mirror)' -- $(MAKE) workflow
	$(BIN)/python -m bench.transform_cifar
	$(BIN)/python -m bench.model_quality
	$(BIN)/python -m bench.endpoint --model-dir out/model
	$(BIN)/python -m bench.workflow_throughput --dataset out/dataset --model-dir out/model
	$(BIN)/python -m bench.api --model-dir out/model --requests 1000 --concurrency 4
	$(BIN)/python -m bench.review --items 500 --reviewers 2
	$(BIN)/python -m bench.review --items 500 --reviewers 2 --source s3
	$(BIN)/python -m bench.batch --model-dir out/model --dataset out/dataset --images 1000
	$(BIN)/python -m bench.closed_loop
	$(BIN)/python -m bench.audit_sampling --seeds 200
	$(BIN)/python -m bench.quality_scenario
	$(BIN)/python -m bench.quality_scenario --target-precision 0.95  # the model as trained against a target it meets
	$(BIN)/python -m bench.sagemaker_training
	$(BIN)/python -m tools.measured  # README.md and docs/ from bench/results.json

smoke: install ## Check a deployed stack: make smoke STACK=<name> [GATE=out/gate.json] (tests/smoke, its Outputs)
	@test -n "$(STACK)" || { echo "name the stack: make smoke STACK=<name> [GATE=out/gate.json]" >&2; exit 2; }
	SCONES_STACK_NAME=$(STACK) $(if $(GATE),SCONES_GATE_FILE=$(GATE)) $(BIN)/python -m pytest -m smoke tests/smoke

deploy: build ## sam deploy with samconfig.toml (needs AWS credentials)
	$(SAM) deploy

clean: ## Remove build outputs (keeps the virtual environments)
	rm -rf .aws-sam build out
