"""The layout of a chain's folder (``runs/demo``): the one place that spells the paths ``chain`` writes and
``report`` reads. The files inside a recognizer or GAN run keep their own packages' names
(``recognizer.outputs``, ``gan_aug.grids``, ``expr_common.runs``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from expr_common.runs import CONFIG_FILE, REPORT_FILE, RunDir
from gan_aug.generate_edit import EDIT_REPORT
from gan_aug.grids import sample_grids
from recognizer.ablation import cell_dir

ARMS = ("baseline", "synthetic", "source_real")  # baseline = the + GCSA + CF, V+A ablation cell; + "edited"
BASELINE_ROW = "gcsa_cf"  # the baseline arm is this ablation cell in the chain's modality (ChainDir.modality)
PRETRAIN_TASK = "pretrain"
FIDELITY_JSON = "fidelity.json"
SYNTH_CONFUSION, REAL_CONFUSION = "confusion_synthetic.png", "confusion_real.png"


@dataclass(frozen=True)
class ChainDir:
    """Paths inside one chain folder; ``modality`` is the chain's (its baseline arm's cell)."""

    root: Path
    modality: str = "av"

    # the chain's own bookkeeping
    @property
    def config(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def done(self) -> Path:
        return self.root / "done"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def marker(self, task: str) -> Path:
        """Left by a finished step (holding its seconds): a rerun skips the step."""
        return self.done / (task.replace("/", "__") + ".done")

    def log(self, task: str) -> Path:
        return self.logs / (task.replace("/", "__") + ".log")

    # the generator's side
    @property
    def gan(self) -> RunDir:
        return RunDir(self.root / "gan")

    def gan_grids(self, domain: str) -> list[Path]:
        return sample_grids(self.gan.root, domain)

    @property
    def synthetic(self) -> Path:
        """``gan-aug generate --out``: the synthetic samples and their manifest."""
        return self.root / "synthetic"

    @property
    def fid_report(self) -> Path:
        return self.root / "fid" / "report.json"

    @property
    def fid_cache(self) -> Path:
        return self.root / "fid" / "cache"

    @property
    def fidelity(self) -> Path:
        return self.root / "fidelity"

    @property
    def fidelity_json(self) -> Path:
        return self.fidelity / FIDELITY_JSON

    @property
    def fidelity_confusion(self) -> Path:
        return self.fidelity / SYNTH_CONFUSION

    # the editing GAN's side (the + edited arm)
    @property
    def gan_edit(self) -> RunDir:
        return RunDir(self.root / "gan_edit")

    def gan_edit_grids(self, domain: str) -> list[Path]:
        return sample_grids(self.gan_edit.root, domain)

    @property
    def edited(self) -> Path:
        """``gan-aug generate --mode edit --out``: the edited clips, their manifest and edit report."""
        return self.root / "edited"

    @property
    def edit_report(self) -> Path:
        return self.edited / EDIT_REPORT

    @property
    def edited_kept(self) -> Path:
        """``fidelity --keep-recognised``: the edits the judge names by their class (``edit.filter``)."""
        return self.root / "edited_kept"

    @property
    def fidelity_kept(self) -> Path:
        """The kept edits' class fidelity by another seed's baseline (a judge that did not filter them)."""
        return self.root / "fidelity_kept"

    @property
    def fid_edit_report(self) -> Path:
        return self.root / "fid_edit" / "report.json"

    @property
    def fidelity_edit(self) -> Path:
        return self.root / "fidelity_edit"

    # the recognizer's side
    @property
    def ablation(self) -> Path:
        return self.root / "ablation"

    def cell(self, row: str, modality: str, seed: int) -> Path:
        """One ablation cell's recognizer run (where ``recognizer ablate`` keeps it too)."""
        return cell_dir(self.ablation, row, modality, seed)

    @staticmethod
    def cell_config(run: Path) -> Path:
        """The resolved config a chain writes beside each recognizer run it starts."""
        return run / "cell.yaml"

    @staticmethod
    def scored(run: Path, split: str) -> RunDir:
        """``recognizer evaluate`` of a run's best checkpoint on ``split`` (the chain's score_split)."""
        return RunDir(run / f"scored_{split}")

    @staticmethod
    def cell_task(row: str, modality: str, seed: int) -> str:
        return f"ablation/{row}_{modality}/seed{seed}"

    @property
    def pretrain(self) -> RunDir:
        """The pre-training run (V only, on the source domains)."""
        return RunDir(self.root / "pretrain")

    def pretrained(self, modality: str, seed: int) -> Path:
        """A + GCSA + CF cell fine-tuned from the pre-training run's best checkpoint."""
        return self.root / "pretrained" / f"{BASELINE_ROW}_{modality}" / f"seed{seed}"

    @staticmethod
    def pretrained_task(modality: str, seed: int) -> str:
        return f"pretrained/{BASELINE_ROW}_{modality}/seed{seed}"

    def arm(self, arm: str, seed: int) -> Path:
        """One arm's recognizer run; the baseline arm is the full model's V+A ablation cell."""
        if arm == "baseline":
            return self.cell(BASELINE_ROW, self.modality, seed)
        return self.root / "arms" / arm / f"seed{seed}"

    def arm_task(self, arm: str, seed: int) -> str:
        if arm == "baseline":
            return self.cell_task(BASELINE_ROW, self.modality, seed)
        return f"arms/{arm}/seed{seed}"

    def arm_runs(self, seeds: int, arms: tuple[str, ...] = ARMS) -> dict[str, list[Path]]:
        return {arm: [self.arm(arm, s) for s in range(seeds)] for arm in arms}

    # the report
    @property
    def report(self) -> Path:
        return self.root / REPORT_FILE

    @property
    def report_json(self) -> Path:
        return self.root / "report.json"

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    @property
    def per_class_png(self) -> Path:
        return self.figures / "per_class_f1.png"

    @property
    def curves_png(self) -> Path:
        return self.figures / "training_curves.png"
