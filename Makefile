# The README's two commands: `make demo` and `make test`. Both build ./.venv first.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Tests run on CPU; several JAX devices are faked for the sharding tests inside those tests.
export JAX_PLATFORMS := cpu
export TF_CPP_MIN_LOG_LEVEL := 3
export MUJOCO_GL ?= egl

.PHONY: venv test demo clean

venv: $(STAMP)

# Hosts whose pip config names absent local mirrors print one warning per package; hide only those.
$(STAMP): pyproject.toml runtime/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing vla-jax, vla-runtime and their dependencies into $(VENV) (a few minutes the first time)..."
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]' -e './runtime[server]' 2>&1 | { grep -v 'is ignored: it is neither a file nor a directory' || true; }
	touch $(STAMP)

test: venv
	$(PY) -m pytest -q -n 2 --dist loadfile

demo: venv
	$(VENV)/bin/vla-jax demo

clean:
	rm -rf $(VENV) demo_out
