# Two entry points for a new machine: `make demo` and `make test`.
# Both create .venv at the repository root and install what they need.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt

.PHONY: demo test lint test-torch2.13 docs zoo bench clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.base: $(VENV)/bin/python pyproject.toml constraints.txt
	$(PIP) torchvision -e .
	touch $@

$(VENV)/.test: $(VENV)/.base
	$(PIP) -e '.[test]'
	touch $@

$(VENV)/.bench: $(VENV)/.test
	$(PIP) -e '.[test,bench,interop]'
	touch $@

# qready exits 1 when it has findings, which is the point of the demo; 2 would be a real failure.
demo: $(VENV)/.base
	@echo "== qready check on examples/every_rule.py (breaks every rule) =="
	$(VENV)/bin/qready check examples/every_rule.py:EveryRule --input 1x3x32x32 || [ $$? -eq 1 ]
	@echo
	@echo "== qready check on torchvision resnet18 =="
	$(VENV)/bin/qready check torchvision.models:resnet18 --input 1x3x224x224 --select QR003,QR004,QR005 || [ $$? -eq 1 ]
	@echo
	@echo "== qready prepare on torchvision resnet18, then check the result =="
	@mkdir -p out
	$(VENV)/bin/qready prepare torchvision.models:resnet18 --input 1x3x224x224 -o out/resnet18_prepared --force
	$(VENV)/bin/python -c "import qready, torch; m = qready.load('out/resnet18_prepared').eval(); \
	print(qready.check(m, (torch.randn(1, 3, 224, 224),), select=['QR003', 'QR004', 'QR005']).to_dict()['summary'])"

# ruff and mypy as configured in pyproject.toml: bugs, not style
lint: $(VENV)/.test
	$(PY) -m ruff check src tests benchmarks examples
	$(PY) -m mypy

test: lint
	$(PY) -m pytest -q

# The previous torch release, CPU build, without torchvision (not built for it here): the suite
# again, the tests that need torchvision skipping with that reason.
VENV_OLD := .venv-torch2.13
$(VENV_OLD)/.test: pyproject.toml
	$(PYTHON) -m venv $(VENV_OLD)
	$(VENV_OLD)/bin/python -m pip install --quiet --disable-pip-version-check torch==2.13.0 -e '.[test-core]'
	touch $@

test-torch2.13: $(VENV_OLD)/.test
	$(VENV_OLD)/bin/python -c "import torch; assert torch.__version__.startswith('2.13.'), torch.__version__"
	$(VENV_OLD)/bin/python -m pytest -q

# docs/cli.md is generated from the CLI's parser (tests/test_docs.py fails when it drifts)
docs: $(VENV)/.base
	$(PY) scripts/cli_reference.py

bench: $(VENV)/.bench
	$(PY) benchmarks/check_overhead.py
	$(PY) benchmarks/prepare_speed.py
	$(PY) benchmarks/prepare_memory.py

zoo: $(VENV)/.bench
	$(PY) benchmarks/zoo.py

clean:
	rm -rf $(VENV) $(VENV_OLD) .pytest_cache
