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

.PHONY: venv sysdeps lint fmt test demo clean

venv: sysdeps $(STAMP)

# MuJoCo renders headless through EGL with Mesa's software driver (llvmpipe).
# Install the two system libraries only when they are missing (fresh machines).
sysdeps:
	@if ! ldconfig -p | grep -q 'libEGL_mesa.so.0'; then \
	  echo "Installing headless OpenGL (libegl1, libgl1-mesa-dri) for MuJoCo rendering..."; \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libegl1 libgl1-mesa-dri >/dev/null) \
	      || { echo "error: apt-get could not install libegl1 libgl1-mesa-dri; install them (or libosmesa6 and set MUJOCO_GL=osmesa) and rerun"; exit 1; }; \
	  else \
	    echo "error: MuJoCo needs EGL: run 'sudo apt-get install libegl1 libgl1-mesa-dri' (or libosmesa6 with MUJOCO_GL=osmesa) and rerun"; exit 1; \
	  fi; \
	fi

# Hosts whose pip config names absent local mirrors print one warning per package; hide only those.
# A mujoco of another version than the pin is removed first, files and all: some installed mujoco
# wheels list almost nothing in their RECORD, and pip's downgrade then leaves a broken package.
MUJOCO_PIN := $(shell grep -oP '"mujoco==\K[0-9.]+' pyproject.toml)
$(STAMP): pyproject.toml runtime/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@if $(PY) -c "import importlib.metadata as m, sys; sys.exit(m.version('mujoco') in ('$(MUJOCO_PIN)',))" 2>/dev/null; then \
	  echo "Replacing mujoco $$($(PY) -c "import importlib.metadata as m; print(m.version('mujoco'))") with the pinned $(MUJOCO_PIN)..."; \
	  $(PY) -m pip uninstall -q -y mujoco; rm -rf "$$($(PY) -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/mujoco"; \
	fi
	@echo "Installing vla-jax, vla-runtime and their dependencies into $(VENV) (a few minutes the first time)..."
	$(PY) -m pip install -q --disable-pip-version-check -e './runtime[server]' -e '.[export,dev]' 2>&1 | { grep -v 'is ignored: it is neither a file nor a directory' || true; }
	touch $(STAMP)

# ruff (lint + format check, line length 120) and pyright (basic), configured in pyproject.toml.
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/pyright

# What `ruff` can fix by itself: import order, pyupgrade rewrites, then the formatter.
fmt: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: venv lint
	$(PY) -m pytest -q -n 2 --dist loadfile --durations=20

demo: venv
	$(VENV)/bin/vla-jax demo

clean:
	rm -rf $(VENV) demo_out
