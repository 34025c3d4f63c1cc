# The README's two commands: `make demo` and `make test`. Both build ./.venv first.
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

$(STAMP): pyproject.toml runtime/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]' -e './runtime[server]'
	touch $(STAMP)

test: venv
	$(PY) -m pytest -q -n 2 --dist loadfile

demo: venv
	$(VENV)/bin/vla-jax demo

clean:
	rm -rf $(VENV) demo_out
