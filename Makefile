# modelrun: the two commands are `make demo` and `make test`; both set everything up first.
SHELL := /bin/bash
# uv uses a Python 3.12 it finds (pyenv's, the system's) and downloads one only where none is
# installed; set UV_PYTHON_DOWNLOADS=never to forbid that (uv then fails, naming the version).
export UV_PYTHON_DOWNLOADS ?= automatic
export UV_LINK_MODE := copy
export SAM_CLI_TELEMETRY := 0
UV := .tools/bin/uv
RUN := $(UV) run --frozen --no-sync
SAM := $(UV) tool run --from aws-sam-cli==1.170.0 sam
CHECKOV := $(UV) tool run --from checkov==3.3.30 checkov

.PHONY: setup demo test lint template-checks unit model-tests bench requirements clean

# uv itself, in a bootstrap venv of its own (nothing installed globally).
$(UV):
	python3 -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==0.13.8

setup: $(UV)
	$(UV) sync --frozen
	$(MAKE) -C model_container setup

demo: setup  ## a full model run for a simulated PR, on the embedded local stack
	$(RUN) python -m modelrun_local.demo $(DEMO_ARGS)

test: setup lint template-checks unit model-tests  ## every test

lint:
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy
	$(RUN) zizmor --offline .github  # workflows and dependabot.yml; any finding fails
	$(MAKE) -C model_container lint

template-checks:  ## cfn-lint, sam validate --lint, checkov, sam build (all offline but for PyPI)
	$(RUN) cfn-lint template.yaml
	$(SAM) validate --lint --region us-east-1 --template-file template.yaml
	$(CHECKOV) --skip-download --quiet --compact --framework cloudformation --file template.yaml
	$(SAM) build --template-file template.yaml --build-dir .aws-sam/build --region us-east-1 > .aws-sam-build.log 2>&1 \
		|| (tail -30 .aws-sam-build.log; exit 1)

unit:
	$(RUN) pytest -q -p no:cacheprovider

model-tests:
	$(MAKE) -C model_container test

bench: setup  ## pipeline benchmarks on the local stack (figures to bench/results.json)
	$(RUN) python -m modelrun_local.bench

requirements:  ## regenerate functions/requirements.txt (sam build reads it) from uv.lock
	$(UV) export --only-group lambda --no-hashes --frozen --no-emit-project --no-header -o functions/requirements.txt

clean:
	rm -rf .venv .tools .aws-sam .aws-sam-build.log model_container/.venv .modelrun
