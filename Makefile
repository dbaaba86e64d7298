# Two targets do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# Offline copy of Omniglot beside the project, if there is one; otherwise tensorflow-datasets downloads it.
export SPLITLEAK_OMNIGLOT_DIR ?= $(wildcard $(abspath ../shared/data/omniglot))

.PHONY: venv system-deps demo test docs lint edge-check clean
venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[all]'
	$(BIN)/pip check
	touch $@

# System packages the tests use: a real Mosquitto broker and its clients, Chromium for the live page,
# QEMU user-mode emulation and debootstrap for the emulated Raspberry Pi (splitleak pi-emu), `ip` for
# the lab network's namespaces (tools/deploy/netns.py).
SYSTEM_TOOLS := mosquitto:mosquitto mosquitto_sub:mosquitto-clients chromium:chromium \
  qemu-aarch64-static:qemu-user-static update-binfmts:binfmt-support debootstrap:debootstrap \
  ip:iproute2
system-deps:
	@missing=""; for pair in $(SYSTEM_TOOLS); do \
	  command -v $${pair%%:*} >/dev/null || [ -x /usr/sbin/$${pair%%:*} ] || missing="$$missing $${pair#*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  echo "installing$$missing (Debian packages)"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null \
	    || { echo "could not install$$missing: run apt-get install -y$$missing as root"; exit 1; }; \
	fi

demo: venv
	$(BIN)/splitleak demo

test: venv system-deps
	$(BIN)/python -m pytest

# The documentation site (mkdocs.yml) into site/; --strict fails on a broken link or a page left out.
docs: venv
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

lint: venv
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache

# The edge node's install on its own (no TensorFlow), with any Python the package accepts, e.g.
# make edge-check EDGE_PYTHON=python3.13 EDGE_VENV=.venv-edge-3.13
EDGE_PYTHON ?= $(PYTHON)
EDGE_VENV ?= .venv-edge
edge-check:
	$(EDGE_PYTHON) -m venv $(EDGE_VENV)
	$(EDGE_VENV)/bin/pip install -q '.[edge]'
	$(EDGE_VENV)/bin/pip check
	! $(EDGE_VENV)/bin/pip list 2>/dev/null | grep -i '^tensorflow '
	$(EDGE_VENV)/bin/python -c "import platform; from splitleak.edge.selfcheck import runtime_name; \
	  print('edge install: Python', platform.python_version(), runtime_name(), 'without TensorFlow')"

clean:
	rm -rf $(VENV) .venv-edge .venv-edge-* runs site
