# The two commands: `make demo` (train, score and serve on the demo data) and `make test`.
# Both install exactly the locked versions (requirements/*.txt, with hashes) into .venv.
PYTHON ?= python3
VENV ?= .venv
LOCK_RUNTIME := requirements/runtime.txt
LOCK_TEST := requirements/test.txt
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml $(LOCK_TEST) | cksum | cut -d' ' -f1)
UV_COMPILE = $(VENV)/bin/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes
# `make lock` keeps every pin it can; `make lock UPGRADE=requests` moves one package (and what
# it needs) to its newest allowed version, `make lock UPGRADE=all` moves every package.
UPGRADE ?=
UPGRADE_FLAGS = $(if $(filter all,$(UPGRADE)),--upgrade,$(foreach p,$(UPGRADE),--upgrade-package $(p)))

.PHONY: demo test lock docs bench bench-serve install clean

$(STAMP): pyproject.toml $(LOCK_TEST)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "likely needs Python 3.11 or newer")'
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --require-hashes --no-deps -r $(LOCK_TEST)
	$(VENV)/bin/pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/likely demo

test: $(STAMP)
	$(VENV)/bin/pytest

# Refresh the lock from pyproject.toml (and requirements/tools.in); commit it with the change.
lock: $(STAMP)
	$(UV_COMPILE) $(UPGRADE_FLAGS) pyproject.toml -o $(LOCK_RUNTIME)
	$(UV_COMPILE) $(UPGRADE_FLAGS) pyproject.toml requirements/tools.in --extra test -c $(LOCK_RUNTIME) -o $(LOCK_TEST)

# The documentation site (docs/ and mkdocs.yml) into build/site; the suite builds it too, strictly.
docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict

bench: $(STAMP)
	$(VENV)/bin/python bench/ingest.py

bench-serve: $(STAMP)
	$(VENV)/bin/python bench/serve.py

clean:
	rm -rf $(VENV) instance .pytest_cache build dist
