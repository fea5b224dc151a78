# IDSentry developer commands. `make demo` and `make test` set everything up on a fresh machine.

PYTHON ?= python3.12
TOOLS := .tools
UV := $(TOOLS)/uv/bin/uv
VENV := .venv
SAM_VENV := $(TOOLS)/sam
PY := $(VENV)/bin/python
SAM := $(SAM_VENV)/bin/sam
export PYTHONDONTWRITEBYTECODE := 1
# SAM CLI telemetry would reach beyond this machine.
export SAM_CLI_TELEMETRY := 0

.PHONY: ingest setup demo demo-test run test lint typecheck template-lint unit integration e2e bench chaos build requirements clean web-upload screenshots

setup: $(VENV)/.synced

$(UV): requirements/uv.lock
	$(PYTHON) -m venv $(TOOLS)/uv
	$(TOOLS)/uv/bin/pip install --quiet --require-hashes -r requirements/uv.lock
	touch $@

$(VENV)/.synced: $(UV) uv.lock pyproject.toml cli/pyproject.toml
	UV_PYTHON=$(PYTHON) $(UV) sync --frozen --quiet
	touch $@

$(SAM_VENV)/.synced: $(UV) requirements/sam.lock
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(SAM_VENV)
	$(UV) pip sync --quiet --require-hashes --python $(SAM_VENV)/bin/python requirements/sam.lock
	touch $@

demo: setup
	$(PY) -m infra.local.demo $(DEMO_ARGS)

run: setup
	$(PY) -m infra.local.run

# The same as `.venv/bin/idsentry --local intake upload FILE --manifest MANIFEST`.
ingest: setup
	$(VENV)/bin/idsentry --local intake upload "$(FILE)" --manifest "$(MANIFEST)"

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: setup
	$(VENV)/bin/mypy

template-lint: setup $(SAM_VENV)/.synced
	$(VENV)/bin/cfn-lint template.yaml
	$(SAM) validate --lint --region us-east-1

unit: setup
	$(PY) -m pytest tests/unit -q

integration: setup
	$(PY) -m pytest tests/integration -q

e2e: setup
	$(PY) -m pytest tests/e2e -q

bench: setup
	$(PY) -m infra.bench

# Every reliability scenario at its full size; writes docs/reliability.md.
chaos: setup
	$(PY) -m infra.chaos

test: lint typecheck template-lint
	$(PY) -m infra.build.requirements --check
	$(PY) -m pytest tests -q -p no:cacheprovider -m "not demo"

# The demo story's own tests play the whole demo, so they run apart from `make test`.
demo-test: setup
	$(PY) -m pytest tests/e2e/test_demo.py -q -p no:cacheprovider -m demo

requirements: setup
	$(PY) -m infra.build.requirements

build: setup $(SAM_VENV)/.synced
	$(PY) -m infra.build.requirements --check
	PATH="$(abspath $(SAM_VENV))/bin:$$PATH" $(SAM) build --parallel


# Sync web/ to the signup page bucket of a deployed stack and refresh CloudFront's cache:
# make web-upload STACK=idsentry-prod [REGION=ap-east-1]. Uses the environment's AWS credentials.
web-upload: setup
	@test -n "$(STACK)" || { echo "set STACK to the deployed stack's name: make web-upload STACK=idsentry-prod" >&2; exit 2; }
	$(PY) -m infra.web.upload --stack-name "$(STACK)" $(if $(REGION),--region "$(REGION)")

# The pictures of docs/screenshots.md (signup and account pages, the security report, its PDF,
# a dossier and the reconciliation summary), from the local stack in headless Chromium (Debian's
# chromium, chromium-driver and fonts-noto-cjk) and pdftoppm (Debian's poppler-utils).
screenshots: setup
	$(PY) -m infra.web.screenshots

clean:
	rm -rf .aws-sam .local .pytest_cache .mypy_cache .ruff_cache
