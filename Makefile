# satbridge: the two commands are `make run` (a sandboxed bridge on this machine) and
# `make test` (everything CI checks). Both set up .venv first.

PYTHON ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
SANDBOX ?= .sandbox
LISTEN ?= 127.0.0.1:50051
PAIRING_LISTEN ?= 127.0.0.1:50052
PYTEST_ARGS ?=

.PHONY: venv run setup test lint unit proto bench soak zipapp image vm clean

venv: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	@build/check-prereqs.sh $(PYTHON)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -U pip setuptools wheel
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test,dev]'
	touch $@

# A real bridge under ./$(SANDBOX): no root, systemd or NetworkManager needed. It prints a
# pairing code and the satctl line that pairs with it (with the ports, when not the defaults).
SANDBOXED := $(BIN)/satbridge --root $(SANDBOX) --sandbox --listen $(LISTEN) --pairing-listen $(PAIRING_LISTEN)
run: venv
	@$(BIN)/python build/check-ports.py $(LISTEN) $(PAIRING_LISTEN)
	$(SANDBOXED) init-config
	$(SANDBOXED) pair-window open
	@echo "Serving (Ctrl-C stops); satctl is $(BIN)/satctl"
	exec $(SANDBOXED) --serve

lint: venv
	$(BIN)/ruff check satbridge tests build bench bridge.py
	$(BIN)/ruff format --check satbridge tests build bench bridge.py
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python build/gen_proto.py --check

unit: venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Packages and the appliance rootfs, once, before any test (build/setup-labs.sh; as root only).
setup:
	build/setup-labs.sh

# Sequential on purpose: set-up first, so no lab builds inside a test's timeout. Under sudo, what
# it made in the checkout goes back to the user who ran sudo, so their own `make` keeps working.
test:
	@status=0; \
	$(MAKE) --no-print-directory setup && \
	$(MAKE) --no-print-directory lint && \
	$(MAKE) --no-print-directory unit PYTEST_ARGS='$(PYTEST_ARGS)' || status=$$?; \
	if [ -n "$${SUDO_UID:-}" ]; then \
	    chown -R "$$SUDO_UID:$$SUDO_GID" $(VENV) .mypy_cache .ruff_cache .pytest_cache .setuptools-build *.egg-info 2>/dev/null; \
	fi; \
	exit $$status

proto: venv
	$(BIN)/python build/gen_proto.py

# Every benchmark, one markdown report of ratios: bench/out/report.md (BENCH_ARGS=--quick).
# As root it first installs the packages the benches use (openssh-server for the scp reference).
bench: venv
	build/setup-labs.sh --packages-only
	$(BIN)/python bench/report.py $(BENCH_ARGS)

# A 10-minute soak of mixed load (not part of `make test`).
soak: venv
	$(BIN)/python bench/soak.py --minutes 10

zipapp: venv
	$(BIN)/python build/zipapp.py

# The satellite VM image (root): dist/image/satellite.{qcow2,vmdk,vhdx}. VENDOR_KEYS: a directory
# of the *.pub keys XCC packages must be signed with, baked into the image.
VENDOR_KEYS ?=
image: zipapp
	build/appliance/build-image.sh dist/satbridge.pyz dist/image $(VENDOR_KEYS)

# Boot it (UEFI, QEMU; TCG where KVM cannot): the menu on this terminal, the bridge's ports on
# 127.0.0.1:50051/50052. Ctrl-A X quits.
vm:
	build/appliance/boot-vm.sh dist/image/satellite.qcow2 dist/vm-run

clean:
	rm -rf $(VENV) $(SANDBOX) .setuptools-build *.egg-info .mypy_cache .ruff_cache .pytest_cache
