"""A non-editable install (the wheel) carries conf/ as mixup_bench.conf and the claims."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

from .conftest import REPO


def test_the_wheel_ships_the_configs_and_claims(tmp_path):
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                            str(tmp_path / "wheel"), str(REPO)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    wheel = next((tmp_path / "wheel").glob("mixup_bench-*.whl"))
    # Every YAML under conf/ ships, in every group, without a list of groups to keep up.
    with zipfile.ZipFile(wheel) as archive:
        shipped = {name for name in archive.namelist() if name.startswith("mixup_bench/conf/")}
    wanted = {f"mixup_bench/conf/{path.relative_to(REPO / 'conf').as_posix()}"
              for path in (REPO / "conf").rglob("*.yaml")}
    assert wanted and wanted <= shipped, sorted(wanted - shipped)
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q",
                              "--target", str(tmp_path / "site"), str(wheel)],
                             capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-3000:]
    code = ("import mixup_bench, sys; print(mixup_bench.__file__); "
            "from mixup_bench.report.judgement.verdicts import load_claims; "
            "print(len(load_claims()), 'claims'); "
            "from mixup_bench.cli import main; "
            "sys.exit(main(['train', '--cfg', 'job', 'experiment=paper', 'data=cifar100']))")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": str(tmp_path / "site")})
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines()[0].startswith(str(tmp_path / "site"))
    assert "name: preact_resnet18" in result.stdout and "num_classes: 100" in result.stdout
    assert int(result.stdout.splitlines()[1].split()[0]) >= 10


# What the models take from timm, with the first release that has it (found by building
# every model, zero_init_last on and off, under timm 1.0.10, 1.0.15 and 1.0.16).
TIMM_NEEDS = {
    "resnetv2_18 (model=preact_resnet18_timm, timm:resnetv2_18)": "1.0.10",
    "PreActBasic.zero_init_last zeroes conv2 (model.zero_init_last=true with "
    "preact_resnet18_timm; before 1.0.16 it raised AttributeError on conv3)": "1.0.16",
}


def test_the_timm_floor_covers_what_the_models_use():
    import re

    import timm
    import torch
    from packaging.version import Version

    from mixup_bench.models import build_model

    floor = re.search(r'"timm>=([\d.]+)"', (REPO / "pyproject.toml").read_text()).group(1)
    assert Version(floor) >= max(map(Version, TIMM_NEEDS.values()))
    assert Version(timm.__version__) >= Version(floor)
    model = build_model("preact_resnet18_timm", 10, zero_init_last=True)
    last_convs = [block.conv2.weight for stage in model.stages for block in stage.blocks]
    assert last_convs and all(torch.count_nonzero(weight) == 0 for weight in last_convs)
