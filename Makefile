# Two entry points for a new machine: `make demo` and `make test`.
# Both create .venv at the repository root and install what they need.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt

.PHONY: demo test test-torch2.13 docs zoo bench clean

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

test: $(VENV)/.test
	$(PY) -m pytest -q

# docs/cli.md is generated from the CLI's parser (tests/test_docs.py fails when it drifts)
docs: $(VENV)/.base
	$(PY) scripts/cli_reference.py

bench: $(VENV)/.bench
	$(PY) benchmarks/check_overhead.py
	$(PY) benchmarks/prepare_speed.py

zoo: $(VENV)/.bench
	$(PY) benchmarks/zoo.py

clean:
	rm -rf $(VENV) .pytest_cache
