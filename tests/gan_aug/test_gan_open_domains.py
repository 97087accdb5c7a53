"""Open domains (issue 15, part 2): a manifest may name any lower-case domain; the GAN embeds the domains
of its training data, stores them in its checkpoint, and `generate --domain` takes exactly those."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
import yaml
from accelerate import Accelerator

from expr_common.checkpoint import CONFIG_KEY, load_checkpoint
from expr_common.data import manifest
from expr_common.paths import repo_root
from gan_aug.cli import main as gan_main
from gan_aug.config import DOMAINS, domain_table
from gan_aug.run_config import load_train_config, stored_config
from gan_aug.training import train

TINY_GAN = repo_root() / "configs" / "gan_aug" / "tiny.yaml"
TINY_DATA = repo_root() / "configs" / "data" / "synthetic_tiny.yaml"


def test_domain_table_keeps_the_defaults_first_and_never_embeds_gan_output():
    assert domain_table(["affwild2", "rafdb", "ckplus", "synthetic", "afew", "my-lab"]) == [
        "ckplus", "afew", "affwild2", "my-lab", "rafdb",
    ]  # fmt: skip
    assert domain_table(["affwild2"]) == ["affwild2"]


def test_a_manifest_may_name_any_lower_case_domain(tmp_path):
    image = tmp_path / "a.png"
    from PIL import Image

    Image.new("RGB", (8, 8)).save(image)
    rows = "sample_id,frames,audio,label,split,subject,domain\n"
    (tmp_path / "manifest.csv").write_text(
        rows + "s1,a.png,,Fear,train,p1,rafdb\ns2,a.png,,Fear,train,p2,My Lab\n"
    )
    result = manifest.read(tmp_path, strict=False)
    assert [r.domain for r in result.refs] == ["rafdb"]
    assert len(result.errors) == 1 and "'My Lab' is not a lower-case name" in str(result.errors[0])


@pytest.fixture(scope="module")
def lab_gan(tiny_corpus, tmp_path_factory) -> Path:
    """A tiny GAN trained on the tiny corpus plus a lab's own faces under the domain name ``mylab``."""
    root = tmp_path_factory.mktemp("open_domains")
    rows = list(csv.DictReader((tiny_corpus / "ckplus" / "manifest.csv").open()))
    lab = root / "mylab"
    lab.mkdir()
    with (lab / "manifest.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            frames = str((tiny_corpus / "ckplus" / row["frames"]).resolve())
            writer.writerow(row | {"frames": frames, "domain": "mylab", "split": "train"})
    data = yaml.safe_load(TINY_DATA.read_text())
    data["sources"].append({"name": "mylab", "format": "manifest", "root": str(lab), "faces": "crops"})
    data["cache"]["root"] = str(root / "cache")
    (root / "data.yaml").write_text(yaml.safe_dump(data))
    config = load_train_config(TINY_GAN, [f"data={root / 'data.yaml'}", "train.steps=2"])
    result = train(config, root / "gan", accelerator=Accelerator(cpu=True))
    assert sorted(p.name for p in result.grids) == sorted(f"step0000002_{d}.png" for d in [*DOMAINS, "mylab"])
    return root / "gan" / "checkpoints" / "last.pt"


def test_the_gan_embeds_and_stores_its_datas_domains(lab_gan):
    state = load_checkpoint(lab_gan)
    assert state[CONFIG_KEY]["model"]["domains"] == ["ckplus", "afew", "affwild2", "mylab"]
    assert state["G_ema"]["domain_embed.weight"].shape[0] == 4
    assert state["real_frame_counts"].shape[1] == 4 and int(state["real_frame_counts"][:, 3].sum()) > 0


def test_generate_takes_the_checkpoints_domain_names(lab_gan, tmp_path, capsys):
    argv = ["generate", "--checkpoint", str(lab_gan), "--per-class", "1"]
    assert gan_main([*argv, "--out", str(tmp_path / "lab"), "--domain", "mylab"]) == 0
    written = manifest.read(tmp_path / "lab").refs
    assert len(written) == 8 and {r.domain for r in written} == {"synthetic"}
    assert all(r.sample_id.startswith("gan-mylab-") for r in written)
    assert gan_main([*argv, "--out", str(tmp_path / "x"), "--domain", "rafdb"]) == 2
    assert "trained on the domains ckplus, afew, affwild2, mylab" in capsys.readouterr().err


def test_a_checkpoint_from_before_domain_tables_still_loads(lab_gan):
    state = load_checkpoint(lab_gan)
    old = dict(state[CONFIG_KEY]["model"])
    old.pop("domains")
    old["num_domains"] = 3
    config = stored_config({**state, CONFIG_KEY: {**state[CONFIG_KEY], "model": old}}, "old.pt")
    assert config.model.domains == list(DOMAINS) and config.model.num_domains == 3
    assert torch.is_tensor(state["G_ema"]["domain_embed.weight"])


def test_a_resumed_gan_keeps_its_domain_table_and_refuses_new_domains(lab_gan, tmp_path):
    import shutil

    run = lab_gan.parent.parent
    copy = shutil.copytree(run, tmp_path / "gan")
    config = load_checkpoint(copy / "checkpoints" / "last.pt")[CONFIG_KEY]
    data = yaml.safe_load(Path(config["data"]).read_text())
    data["sources"] = [s for s in data["sources"] if s["name"] != "mylab"]  # a domain fewer: still fits
    fewer = tmp_path / "fewer.yaml"
    fewer.write_text(yaml.safe_dump(data))
    resumed = load_train_config(TINY_GAN, [f"data={fewer}", "train.steps=3"])
    train(resumed, copy, resume=True, accelerator=Accelerator(cpu=True))
    kept = load_checkpoint(copy / "checkpoints" / "last.pt")[CONFIG_KEY]["model"]["domains"]
    assert kept == ["ckplus", "afew", "affwild2", "mylab"]  # indices keep their meaning
    rows = list(csv.DictReader(open(Path(config["data"]).parent / "mylab" / "manifest.csv")))
    other = tmp_path / "rafdb"
    other.mkdir()
    with (other / "manifest.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(r | {"domain": "rafdb"} for r in rows)
    data["sources"].append({"name": "rafdb", "format": "manifest", "root": str(other), "faces": "crops"})
    data["cache"]["root"] = str(tmp_path / "cache2")
    more = tmp_path / "more.yaml"
    more.write_text(yaml.safe_dump(data))
    from expr_common.errors import DataError

    with pytest.raises(DataError, match="rafdb that this GAN was not trained on"):
        train(load_train_config(TINY_GAN, [f"data={more}", "train.steps=4"]), copy, resume=True,
              accelerator=Accelerator(cpu=True))  # fmt: skip
