"""docs/config.md cannot drift from conf/: it is generated, and these tests fail when the
page and the configs disagree, when a composed key has no row, or a key has no comment."""

from __future__ import annotations

import re
import shutil

import pytest

from mixup_bench import config_doc
from mixup_bench.config import flatten

from .test_config import composed


def test_docs_config_md_is_what_conf_generates():
    assert config_doc.DOC.read_text() == config_doc.render(), (
        "docs/config.md is out of date: run `python -m mixup_bench.config_doc --write`")


@pytest.mark.parametrize("option", ["data=cifar10", "data=cifar100", "model=preact_resnet18",
                                    "aug=mixup_cutmix", "aug=manifold_mixup", "sched=multistep"])
def test_every_key_of_a_composed_config_has_a_row(option):
    """Checked against Hydra's own composition, not against the generator's reading."""
    text = config_doc.render()
    documented = set(re.findall(r"`((?:[a-z_]+\.)*[a-z_]+)`", text))
    keys = {key for key in flatten(composed(option)) if not key.startswith("hydra.")}
    assert keys and keys - documented == set()


def test_a_key_without_a_comment_is_refused(tmp_path, monkeypatch):
    conf = tmp_path / "conf"
    shutil.copytree(config_doc.CONF, conf)
    with (conf / "trainer" / "default.yaml").open("a") as handle:
        handle.write("new_switch: 3\n")
    monkeypatch.setattr(config_doc, "CONF", conf)
    with pytest.raises(ValueError, match=r"trainer\.new_switch \(conf/trainer/\)"):
        config_doc.render()


def test_a_comment_above_a_key_and_continuation_lines_are_its_meaning(tmp_path):
    path = tmp_path / "group.yaml"
    path.write_text("# header, not a key's\nname: x        # the name\n# about root\nroot: r\n"
                    "size: 3        # first line\n               # second line\n"
                    "nested:\n  inner: 1     # inner key\n")
    entries = {entry.key: entry.meaning for entry in config_doc.read_entries(path)}
    assert entries == {"name": "the name", "root": "about root",
                       "size": "first line second line", "nested.inner": "inner key"}
