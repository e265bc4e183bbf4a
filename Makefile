# The two commands the README starts with: `make demo` and `make test`.
VENV := .venv
PYTHON := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.ganzoo-installed
TORCH := torch==2.14.1 torchvision==0.29.1

.PHONY: venv demo test space

venv: $(STAMP)

# Re-runs only when pyproject.toml changes (or the venv is gone).
$(STAMP): pyproject.toml
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PIP) install $(TORCH)
	$(PIP) install -e ".[all]"
	touch $@

demo: venv
	$(PYTHON) space/app.py

# A self-contained Hugging Face Space in build/space/ (app, tabs, examples, ganzoo with its weights,
# requirements.txt, README front matter); `ganzoo publish --namespace NS` uploads it.
space: venv
	$(PYTHON) space/build.py --out build/space

# pytest exits 5 when it collected no tests: that is a failure, not a pass.
test: venv
	@$(PYTHON) -m pytest -q $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "ERROR: pytest collected no tests (exit code 5); treating that as a failure." >&2; fi; \
	exit $$rc
