# mixup-bench: every target uses the project's own .venv (made by `make install`).
PYTHON_SYSTEM ?= python3
VENV          ?= .venv
PY            := $(VENV)/bin/python
MB            := $(VENV)/bin/mixup-bench
# On the development machines these wheels lie on disk; elsewhere pick your build,
# e.g. make install TORCH="torch torchvision --index-url https://download.pytorch.org/whl/cu126"
TORCH         ?= torch==2.14.1 torchvision==0.29.1
DATA          ?= data
SHARED_DATA   ?= ../shared/data
# The shared copy of CIFAR-10 is JPEG-derived: its checksums are not the official ones.
DATA_ARGS     = data.root=$(DATA) $(if $(wildcard $(DATA)/.jpeg-copy),data.verify=false,)
ARGS          ?=
PYTEST_ARGS   ?=

.PHONY: install test train smoke data lint clean help

help:
	@echo "make install   create $(VENV) and install mixup-bench with its test extras"
	@echo "make test      install, then run the test suite"
	@echo "make train     install, then: mixup-bench train aug=mixup alpha=0.2 (ARGS=... adds overrides)"
	@echo "make smoke     install, then a 1-2 minute CPU run (experiment=smoke)"
	@echo "make data      write CIFAR-10 into $(DATA)/ from $(SHARED_DATA) when there is no download"

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON_SYSTEM) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -c "import torch, torchvision" 2>/dev/null || $(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed

test: install
	$(PY) -m pytest -q $(PYTEST_ARGS)

# Use the shared JPEG copy when it is there and no CIFAR-10 is; otherwise the
# trainer downloads the official archive itself.
data:
	@if [ ! -d $(DATA)/cifar-10-batches-py ] && [ -f $(SHARED_DATA)/make_cifar10.py ]; then \
		$(PY) $(SHARED_DATA)/make_cifar10.py $(DATA) && touch $(DATA)/.jpeg-copy; fi

train: install data
	$(MB) train aug=mixup alpha=0.2 $(DATA_ARGS) $(ARGS)

smoke: install data
	$(MB) train experiment=smoke $(DATA_ARGS) $(ARGS)

lint: install
	$(VENV)/bin/ruff check mixup_bench tests scripts

clean:
	rm -rf outputs multirun .pytest_cache build *.egg-info
