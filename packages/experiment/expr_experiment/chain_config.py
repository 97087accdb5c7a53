"""The chain's config (``configs/chain/*.yaml``): which corpus, data, GAN and recognizer configs, how many
seeds per arm, which ablation cells, and the settings of the generate and FID steps."""

from __future__ import annotations

from dataclasses import dataclass, field

from expr_common.data.refs import SPLITS
from expr_experiment.layout import ARMS, BASELINE_MODALITY, BASELINE_ROW
from recognizer.ablate import ROWS


@dataclass
class GenerateStep:
    domain: str = "affwild2"  # whose style the GAN draws
    fill_to_max: bool = True  # top every class up to the largest real class (else per_class)
    per_class: int = 0
    clip_len: int = 8  # frames per synthetic clip (the recognizer's K)
    truncation: float = 1.0
    seed: int = 0


@dataclass
class FidStep:
    n: int | None = None  # images per side; None = the smaller source
    per_class: bool = True
    kid: bool = True
    floor: bool = True  # the real-vs-real floor on two disjoint halves of the real target data
    allow_small_n: bool = True  # the demo corpus has far fewer than 2,048 faces; the report says so
    batch_size: int = 50
    # The sampled faces are measured against the real frames of this split. "val": the videos the GAN never
    # saw, the same reference (and the same cached floor) as the edits', so the two arms' FIDs compare.
    real_split: str = "val"

    def __post_init__(self) -> None:
        if self.real_split not in SPLITS:
            raise ValueError(f"fid.real_split must be one of {', '.join(SPLITS)}, got {self.real_split!r}")


@dataclass
class PretrainStep:
    """The paper's initial pre-training (section 2.2): a V-only recognizer learns on the source domains'
    labelled faces first; the listed + GCSA + CF cells are trained again from its checkpoint
    (``train.init_from``) beside the same cells from scratch, every seed."""

    enabled: bool = True
    sources: list[str] = field(default_factory=lambda: ["afew", "ckplus"])  # data config source names
    modalities: list[str] = field(default_factory=lambda: ["v", "av"])  # cells fine-tuned from it
    freeze_epochs: int = 0  # train.freeze_epochs of the fine-tuned cells (the loaded branch held still)
    overrides: list[str] = field(default_factory=list)  # --set style, for the pre-training run only

    def __post_init__(self) -> None:
        if not self.sources:
            raise ValueError("pretrain.sources must name at least one source of the data config")
        if "a" in self.modalities:
            raise ValueError("pretrain.modalities: the audio-only cell has no visual branch to start from")
        if self.freeze_epochs < 0:
            raise ValueError(f"pretrain.freeze_epochs must be >= 0, got {self.freeze_epochs}")


@dataclass
class EditStep:
    """The ``+ edited`` arm (issue: editing GAN): an editing GAN (``model.kind: edit``) trained on the same
    data, real Aff-Wild2 training windows edited into the classes ``gan-aug generate --mode edit`` tops up,
    measured like the sampled faces (FID beside the floor, class fidelity, identity) and trained on by the
    recognizer like ``+ synthetic``, every seed."""

    enabled: bool = False
    gan: str = "configs/gan_aug/demo_edit.yaml"
    gan_overrides: list[str] = field(default_factory=list)
    source: str = "affwild2"  # the data-config source whose training windows are edited
    source_classes: list[str] = field(default_factory=list)  # empty: windows of every class
    fill_to_max: bool = True  # else per_class
    per_class: int = 0
    clip_len: int = 8  # frames per edited clip (at most the cache's K)
    seed: int = 0


@dataclass
class ChainConfig:
    preset: str = "demo"  # `expr-data synth` preset written to data/synthetic_<preset>
    corpus_seed: int = 0
    data: str = "configs/data/synthetic_demo.yaml"
    data_overrides: list[str] = field(default_factory=list)  # --set style, for every step that reads data
    gan: str = "configs/gan_aug/demo.yaml"
    gan_overrides: list[str] = field(default_factory=list)
    recognizer: str = "configs/recognizer/demo.yaml"
    recognizer_overrides: list[str] = field(default_factory=list)
    seeds: int = 3  # per arm (baseline, + synthetic, + source-real, + edited)
    ablation_seeds: int = 1  # per Base / + GCSA cell; at most `seeds` (+ GCSA + CF cells get `seeds`)
    ablation_rows: list[str] = field(default_factory=lambda: list(ROWS))
    ablation_modalities: list[str] = field(default_factory=lambda: ["v", "a", "av"])
    generate: GenerateStep = field(default_factory=GenerateStep)
    fid: FidStep = field(default_factory=FidStep)
    pretrain: PretrainStep = field(default_factory=PretrainStep)
    edit: EditStep = field(default_factory=EditStep)
    jobs: int = 2  # child processes at once (each one thread): the CPU's cores
    fidelity_split: str = "val"

    @property
    def arms(self) -> tuple[str, ...]:
        """The recognizer arms this chain trains (the baseline is the full model's V+A ablation cell)."""
        return (*ARMS, "edited") if self.edit.enabled else ARMS

    @property
    def data_sets(self) -> list[str]:
        """``data_overrides`` as one ``--set`` value for the GAN and recognizer configs."""
        return [f"data_overrides=[{','.join(self.data_overrides)}]"] if self.data_overrides else []

    def __post_init__(self) -> None:
        if BASELINE_ROW not in self.ablation_rows or BASELINE_MODALITY not in self.ablation_modalities:
            raise ValueError("the chain's baseline arm is the gcsa_cf / av ablation cell: keep both")
        if self.seeds < 1 or self.jobs < 1 or not 1 <= self.ablation_seeds <= self.seeds:
            raise ValueError("seeds and jobs must be >= 1, and 1 <= ablation_seeds <= seeds")
        missing = [m for m in self.pretrain.modalities if m not in self.ablation_modalities]
        if self.pretrain.enabled and missing:
            raise ValueError(f"pretrain.modalities {missing} are not in ablation_modalities (baselines)")
