# The two commands a new user needs: `make run` (the app) and `make test` (the whole suite).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
ARGS   ?=
APT_PACKAGES := gnome-keyring dbus dbus-x11 libsecret-tools fonts-dejavu-core openssh-server \
                libegl1 libgl1 libxkbcommon0 libfontconfig1 libdbus-1-3 \
                desktop-file-utils appstream binutils

.PHONY: run test lint system-deps schemas bench clean bundle install-desktop uninstall-desktop references

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.run-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.run-installed

$(VENV)/.bundle-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[bundle]'
	touch $@ $(VENV)/.run-installed

run: $(VENV)/.run-installed
	$(BIN)/comfyvn-gui $(ARGS)

# A one-folder bundle of the app in dist/comfyvn-gui/ (PyInstaller; packaging/README.md).
bundle: $(VENV)/.bundle-installed
	$(BIN)/pyinstaller --noconfirm --clean --log-level WARN --distpath dist \
	  --workpath build/pyinstaller packaging/comfyvn-gui.spec
	@echo "built dist/comfyvn-gui/ (start it with dist/comfyvn-gui/comfyvn-gui)"

# The menu entry, icon and AppStream metadata for you (~/.local/share): starting the bundle
# when one is built, else this checkout's .venv/bin/comfyvn-gui.
install-desktop: $(VENV)/.run-installed
	@if [ -x dist/comfyvn-gui/comfyvn-gui ]; then dist/comfyvn-gui/comfyvn-gui desktop install; \
	else $(BIN)/comfyvn-gui desktop install; fi

uninstall-desktop: $(VENV)/.run-installed
	$(BIN)/comfyvn-gui desktop uninstall

# Installs what the tests need (apt packages when root), then runs the suite and the linters.
# TEST_WORKERS processes (pytest-xdist), each test file in one of them: most tests wait on
# subprocesses, servers and sleeps, so 2 halve the time on a 2-core machine. The `serial`
# tests run after, in one process (exit 5: PYTEST_ARGS chose none of one kind).
TEST_WORKERS ?= 2
test: system-deps $(VENV)/.test-installed lint
	$(BIN)/python -m pytest -m "not gpu and not serial" -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS) || [ $$? -eq 5 ]
	$(BIN)/python -m pytest -m "serial and not gpu" $(PYTEST_ARGS) || [ $$? -eq 5 ]

lint: $(VENV)/.test-installed
	$(BIN)/ruff check comfyvn_gui tests benchmarks packaging docs
	$(BIN)/mypy comfyvn_gui
	$(BIN)/lint-imports
	$(BIN)/comfyvn-gui schemas --check --out docs/schemas
	$(BIN)/python docs/reference/generate.py --check

# docs/reference/cli.md and api.md, from the command line's parser and the OpenAPI document.
references: $(VENV)/.run-installed
	$(BIN)/python docs/reference/generate.py

system-deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "The tests need these packages:$$missing"; \
	    echo "Install them (e.g. sudo apt-get install$$missing) and run make test again."; \
	    exit 1; \
	  fi; \
	fi

schemas: $(VENV)/.run-installed
	$(BIN)/comfyvn-gui schemas --out docs/schemas

bench: $(VENV)/.test-installed
	$(BIN)/python benchmarks/registry_bench.py
	$(BIN)/python benchmarks/checks_bench.py
	$(BIN)/python benchmarks/advisor_bench.py
	$(BIN)/python benchmarks/startup_bench.py
	$(BIN)/python benchmarks/gui_bench.py
	$(BIN)/python benchmarks/window_bench.py
	$(BIN)/python benchmarks/api_bench.py
	$(BIN)/python benchmarks/dispatch_bench.py
	$(BIN)/python benchmarks/dispatch_gui_bench.py
	$(BIN)/python benchmarks/release_bench.py
	$(BIN)/python benchmarks/live_jobs_bench.py
	$(BIN)/python benchmarks/prices_bench.py
	$(BIN)/python benchmarks/bundle_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache build dist
