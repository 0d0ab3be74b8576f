# mixup-bench: every target uses the project's own .venv (made by `make install`).
PYTHON_SYSTEM ?= python3
VENV          ?= .venv
PY            := $(VENV)/bin/python
MB            := $(VENV)/bin/mixup-bench
# The default is the build the test suite runs with; pick another for your machine,
# e.g. make install TORCH="torch torchvision --index-url https://download.pytorch.org/whl/cu126"
TORCH         ?= torch==2.14.1 torchvision==0.29.1
DATA          ?= data
SHARED_DATA   ?= ../shared/data
# The shared copy of CIFAR-10 is JPEG-derived: its checksums are not the official ones.
DATA_ARGS     = data.root=$(DATA) $(if $(wildcard $(DATA)/.jpeg-copy),data.verify=false,)
ARGS          ?=
PYTEST_ARGS   ?=

.PHONY: install test test-slow train smoke bench gpu-check-dry data data-quick reproduce reproduce-quick report lint clean help

help:
	@echo "make install   create $(VENV) and install mixup-bench with its test extras"
	@echo "make test      install, then run the test suite (make test-slow: the slow ones)"
	@echo "make train     install, then: mixup-bench train aug=mixup alpha=0.2 (ARGS=... adds overrides)"
	@echo "make smoke     install, then a short CPU run that checks the install (experiment=smoke)"
	@echo "make bench     mixup-bench bench (ARGS=\"--device cpu --quick\" on a CPU; --profile: where a step's time goes)"
	@echo "make gpu-check-dry  scripts/gpu_check.sh end to end on this CPU at tiny sizes (about 4 minutes)"
	@echo "make data      write CIFAR-10 into $(DATA)/ from $(SHARED_DATA) when there is no download"
	@echo "make reproduce the whole study (GPU, 42 runs of 200 epochs) -> $(STUDY), report in $(RESULTS)"
	@echo "make reproduce-quick  the same pipeline scaled to minutes on a CPU -> $(QUICK_RESULTS)"

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON_SYSTEM) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -c "import torch, torchvision" 2>/dev/null || $(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed

# Tests marked slow (real images) are left out here, to keep the suite short on a 2-core CI
# machine; `make test-slow` runs them.
test: install
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

test-slow: install
	$(PY) -m pytest -q -m slow $(PYTEST_ARGS)

# Use the shared JPEG copy when it is there and no CIFAR-10 is; otherwise the
# trainer downloads the official archive itself.
data:
	@if [ ! -d $(DATA)/cifar-10-batches-py ] && [ -f $(SHARED_DATA)/make_cifar10.py ]; then \
		$(PY) $(SHARED_DATA)/make_cifar10.py $(DATA) && touch $(DATA)/.jpeg-copy; fi

train: install data
	$(MB) train aug=mixup alpha=0.2 $(DATA_ARGS) $(ARGS)

smoke: install data
	$(MB) train experiment=smoke $(DATA_ARGS) $(ARGS)

bench: install
	$(MB) bench $(ARGS)

# The GPU script's every step on the CPU: wheels and data prepared first, as for the device.
gpu-check-dry: install
	PYTHON=$(PY) bash scripts/prepare_device.sh
	GPU_CHECK_DRY_RUN=1 PYTHON=$(PY) bash scripts/gpu_check.sh

lint: install
	$(VENV)/bin/ruff check mixup_bench tests scripts

clean:
	rm -rf outputs multirun .pytest_cache build *.egg-info

# ---------------------------------------------------------------------------
# The study. Sweep directories are fixed, so running a target again skips the
# finished runs and resumes the unfinished ones. A failed job does not stop the
# others (nor the later sweeps: the leading '-'); the report lists it.
STUDY         ?= multirun/study
RESULTS       ?= results/study
SEEDS         ?= 0,1,2
ALPHAS        ?= 0.1,0.2,0.4,1.0
FRACTIONS     ?= 1.0,0.1
QUICK_DATA    ?= data-quick
QUICK_STUDY   ?= multirun/quick
QUICK_RESULTS ?= results/quick
QUICK_SEEDS   ?= 0,1
QUICK_ALPHAS  ?= 0.2,1.0
QUICK_ARGS    ?=
QUICK_DATA_ARGS = data.root=$(QUICK_DATA) $(if $(wildcard $(QUICK_DATA)/.jpeg-copy),data.verify=false,)

# study(EXPERIMENT, PAPER_EXPERIMENT, DIR, SEEDS, ALPHAS, DATA_ARGS, EXTRA)
define study
	-$(MB) train -m experiment=$(1) aug=none data.fraction=$(FRACTIONS) seed=$(4) $(6) $(7) hydra.sweep.dir=$(3)/none
	-$(MB) train -m experiment=$(1) aug=mixup alpha=$(5) data.fraction=$(FRACTIONS) seed=$(4) $(6) $(7) hydra.sweep.dir=$(3)/mixup
	-$(MB) train -m experiment=$(1) aug=cutmix data.fraction=$(FRACTIONS) seed=$(4) $(6) $(7) hydra.sweep.dir=$(3)/cutmix
	-$(MB) train -m experiment=$(2) aug=none,mixup seed=$(4) $(6) $(7) hydra.sweep.dir=$(3)/paper
endef

reproduce: install data
	$(call study,article,paper,$(STUDY),$(SEEDS),$(ALPHAS),$(DATA_ARGS),$(ARGS))
	$(MB) report $(STUDY) --out $(RESULTS)

data-quick: install
	@if [ ! -d $(QUICK_DATA)/cifar-10-batches-py ]; then \
		$(PY) $(SHARED_DATA)/make_cifar10.py $(QUICK_DATA) --train-per-class 200 --test-per-class 50 \
		&& touch $(QUICK_DATA)/.jpeg-copy; fi

reproduce-quick: install data-quick
	$(call study,quick,quick_paper,$(QUICK_STUDY),$(QUICK_SEEDS),$(QUICK_ALPHAS),$(QUICK_DATA_ARGS),trainer.progress=false $(QUICK_ARGS))
	$(MB) report $(QUICK_STUDY) --out $(QUICK_RESULTS)

report: install
	$(MB) report $(STUDY) --out $(RESULTS)
