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

.PHONY: install test test-slow train smoke bench gpu-check-dry data data-quick reproduce reproduce-quick reproduce-methods report lint clean help

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
	@echo "make reproduce-methods  every method of METHODS, OpenMixup's protocol, $(SEEDS) seeds -> $(METHODS_RESULTS)"

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

# The slow tests also compare SaliencyMix's saliency map with OpenCV's (a test-only extra).
test-slow: install
	$(PY) -m pip install --quiet -e ".[test-opencv]"
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

# ---------------------------------------------------------------------------
# Every mixing method under OpenMixup's CIFAR protocol (experiment=openmixup: ResNet-18,
# 200 epochs, batch 100, cosine), each with the alpha OpenMixup's table prints, plus
# vanilla, SEEDS seeds each, on every data set of METHODS_DATA, into fixed sweep folders
# (METHODS_STUDY/<data>/<method>: a re-run skips finished runs), then the report, which
# judges the claims in mixup_bench/report/judgement/claims/openmixup.yaml. CIFAR-100 is
# downloaded by the trainer (data.download=true). One line per method below; the list:
METHODS       ?= mixup cutmix manifold_mixup smoothmix saliencymix fmix gridmix resizemix \
                 attentivemix puzzlemix
METHODS_DATA  ?= cifar10 cifar100
METHODS_STUDY ?= multirun/methods
METHODS_RESULTS ?= results/methods
METHODS_ARGS  ?=
# OpenMixup's alpha per data set and method (docs/en/mixup_benchmarks/Mixup_cifar.md).
ALPHA.cifar10.mixup           = 1.0
ALPHA.cifar10.cutmix          = 0.2
ALPHA.cifar10.manifold_mixup  = 2.0
ALPHA.cifar10.smoothmix       = 0.5
ALPHA.cifar10.saliencymix     = 0.2
ALPHA.cifar10.fmix            = 0.2
ALPHA.cifar10.gridmix         = 0.2
ALPHA.cifar10.resizemix       = 1.0
ALPHA.cifar10.attentivemix    = 2.0
ALPHA.cifar10.puzzlemix       = 1.0
ALPHA.cifar100.mixup          = 1.0
ALPHA.cifar100.cutmix         = 0.2
ALPHA.cifar100.manifold_mixup = 2.0
ALPHA.cifar100.smoothmix      = 0.2
ALPHA.cifar100.saliencymix    = 0.2
ALPHA.cifar100.fmix           = 0.2
ALPHA.cifar100.gridmix        = 0.2
ALPHA.cifar100.resizemix      = 1.0
ALPHA.cifar100.attentivemix   = 2.0
ALPHA.cifar100.puzzlemix      = 1.0
# The shared JPEG copy stands for CIFAR-10 only (data.verify=false there).
METHODS_DATA_ARGS.cifar10  = $(DATA_ARGS)
# CIFAR-100 takes its own mean and std: the preset's Mixup-authors constants are CIFAR-10's.
METHODS_DATA_ARGS.cifar100 = data.root=$(DATA) data.normalization=dataset

# method_runs(DATA): vanilla, then each method with its alpha (a missing alpha stops make).
define method_runs
	-$(MB) train -m experiment=openmixup data=$(1) aug=none seed=$(SEEDS) $(METHODS_DATA_ARGS.$(1)) $(METHODS_ARGS) hydra.sweep.dir=$(METHODS_STUDY)/$(1)/none
	$(foreach method,$(METHODS),$(if $(ALPHA.$(1).$(method)),,$(error no OpenMixup alpha for $(method) on $(1): add ALPHA.$(1).$(method) to the Makefile))
	-$(MB) train -m experiment=openmixup data=$(1) aug=$(method) alpha=$(ALPHA.$(1).$(method)) seed=$(SEEDS) $(METHODS_DATA_ARGS.$(1)) $(METHODS_ARGS) hydra.sweep.dir=$(METHODS_STUDY)/$(1)/$(method))
endef

define newline


endef

reproduce-methods: install data
	$(foreach data,$(METHODS_DATA),$(call method_runs,$(data))$(newline))
	$(MB) report $(METHODS_STUDY) --out $(METHODS_RESULTS)
