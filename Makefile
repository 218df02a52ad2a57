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

.PHONY: setup demo test lint template-checks sam-build unit integration e2e model-tests bench bench-evaluation requirements clean

# uv itself, in a bootstrap venv of its own (nothing installed globally).
$(UV):
	python3 -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==0.13.8

setup: $(UV)
	$(UV) sync --frozen
	$(MAKE) -C model_container setup

demo: setup r-setup  ## full model runs for simulated PRs of two model repositories (Python, R), on the embedded local stack
	$(RUN) python -m modelrun_local.demo $(DEMO_ARGS)

test: setup lint template-checks unit browser-tests integration e2e model-tests  ## every test

lint:
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy
	$(RUN) zizmor --offline .github  # workflows and dependabot.yml; any finding fails
	@# The condo example, laid out as its own repository: its image, its workflow and data script.
	@# (tests/unit/test_workflows.py lints its caller with the reusable workflows' inputs too.)
	$(RUN) hadolint examples/condo-model/Dockerfile
	$(RUN) actionlint -color=false examples/condo-model/.github/workflows/modelrun.yaml
	$(RUN) zizmor --offline examples/condo-model/.github
	$(RUN) mypy --strict examples/condo-model/data/make_sales.py
	$(MAKE) -C model_container lint
	cd model_container && .venv/bin/mypy ../tests/model_container  # its tests, in its env (see [tool.mypy])

# functions/Makefile builds each package with this uv and the venv's Python 3.12.
SAM_BUILD_ENV := UV=$(abspath $(UV)) PYTHON=$(abspath .venv/bin/python)

# Then each package: at most 15 MiB, and it imports from itself, its layers and boto3 alone.
template-checks:  ## cfn-lint, sam validate --lint, checkov, sam build and its packages (offline but for PyPI)
	$(RUN) cfn-lint template.yaml repository.yaml
	$(SAM) validate --lint --region us-east-1 --template-file template.yaml
	$(CHECKOV) --skip-download --quiet --compact --framework cloudformation --file template.yaml
	$(CHECKOV) --skip-download --quiet --compact --framework cloudformation --file repository.yaml
	$(MAKE) --no-print-directory sam-build
	$(PYTEST) tests/packages/test_packages.py

# The one sam build line: template-checks runs it, and so does the bench (`make -s sam-build`).
sam-build:  ## sam build to .aws-sam/build (its output in .aws-sam-build.log)
	$(SAM_BUILD_ENV) $(SAM) build --template-file template.yaml --build-dir .aws-sam/build --region us-east-1 \
		> .aws-sam-build.log 2>&1 || (tail -30 .aws-sam-build.log; exit 1)

PYTEST := $(RUN) pytest -q -p no:cacheprovider

unit: setup  ## tests/unit: the domain, the handlers on fakes, the adapters on in-process moto
	$(PYTEST) tests/unit

# Each module starts one local stack for its tests: --dist loadfile keeps a module on one worker,
# and two workers suit the 2-core machine.
integration: setup  ## the embedded local stack (moto server, local GitHub): the flow, trust, IAM, the CLI
	$(PYTEST) -n 2 --dist loadfile tests/integration

e2e: setup r-setup  ## make demo's flow with the real AVM in model_container's environment, and the condo R example, as tests
	$(PYTEST) tests/e2e

# The condo example (examples/condo-model) runs on Debian's R: r-base-core, jsonlite and ranger,
# each installed only when missing (--no-install-recommends: 15 packages, about 39 MB); it reads
# its data from S3 and uploads its results with Debian's awscli, as its image does with AWS's
# (/usr/bin/aws: a pyenv shim named aws on PATH may run nothing, and the job's PATH is the image's).
R_PACKAGES := jsonlite:r-cran-jsonlite ranger:r-cran-ranger
.PHONY: r-setup
r-setup:
	@missing="$$(command -v Rscript >/dev/null || echo r-base-core)"; \
	for p in $(R_PACKAGES); do \
	  command -v Rscript >/dev/null && Rscript -e "library($${p%%:*})" >/dev/null 2>&1 || missing="$$missing $${p#*:}"; \
	done; \
	test -x /usr/bin/aws || missing="$$missing awscli"; \
	if [ -n "$${missing// /}" ]; then \
	  echo "r-setup: installing$$missing"; \
	  $(APT_GET) update -qq && DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -qq --no-install-recommends $$missing; \
	fi

model-tests: setup  ## the sample AVM's tests in its env (they run `modelrun check` from the repository's env)
	$(MAKE) -C model_container test

bench: setup  ## pipeline benchmarks on the local stack, and the evaluation at scale (figures to bench/results.json)
	$(RUN) python -m modelrun_bench

bench-evaluation: setup  ## the collect step's evaluation at 5,000 / 100,000 / 1,000,000 sales alone (a few minutes)
	$(RUN) python -m modelrun_bench --only-evaluation

# Each function's wheels (its group in pyproject.toml) but the JWT layer's, and the layer's own.
# And what the reusable workflows install: the CLI's dependencies and its build backend.
LAMBDA_FUNCTIONS := submit track collect-results update-pull-request
LAYER_PACKAGES := $(foreach p,pyjwt cryptography cffi pycparser,--no-emit-package $(p))
EXPORT := $(UV) export --frozen --no-emit-project --no-header --quiet

requirements:  ## regenerate functions/requirements/*.txt and .github/workflow-requirements.txt from uv.lock
	mkdir -p functions/requirements
	$(foreach f,$(LAMBDA_FUNCTIONS),$(EXPORT) --only-group lambda-$(f) $(LAYER_PACKAGES) -o functions/requirements/$(f).txt &&) true
	$(EXPORT) --only-group lambda-jwt -o functions/requirements/jwt-layer.txt
	$(EXPORT) --no-default-groups --group workflow-build -o .github/workflow-requirements.txt

# The browser tests (tests/browser) render every chart with Mermaid's own CLI and open report.html
# in Debian's headless chromium: chromium from Debian when it is missing, the pinned npm packages
# (package-lock.json; PUPPETEER_SKIP_DOWNLOAD: puppeteer drives that chromium, it fetches none).
.PHONY: browser-setup browser-tests
APT_GET := $(if $(filter 0,$(shell id -u)),,sudo) apt-get
browser-setup: node_modules/.package-lock.json
	@test -x /usr/bin/chromium || { $(APT_GET) update -qq && DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -qq chromium; }
	@# The comment's marks (🟢 🔴 ✅ ❌) in the screenshots, as a reviewer's browser draws them.
	@fc-list | grep -qi "Noto Color Emoji" || { $(APT_GET) update -qq && DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -qq --no-install-recommends fonts-noto-color-emoji; }

node_modules/.package-lock.json: package.json package-lock.json
	PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
	@touch $@

browser-tests: setup browser-setup  ## the charts in Mermaid and report.html in chromium
	$(PYTEST) tests/browser

clean:
	rm -rf .venv .tools .aws-sam .aws-sam-build.log model_container/.venv .modelrun
