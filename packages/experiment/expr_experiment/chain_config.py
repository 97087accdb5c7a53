"""The chain's config (``configs/chain/*.yaml``): which data (a *target* source the recognizer learns and is
scored on, *source* sources that teach the GAN its expressions), which GAN and recognizer configs, how many
seeds per arm, which ablation cells, and the settings of the generate and FID steps. The data config names
each source by reader or by manifest; ``preset`` generates the procedural corpus first (the demo), and
``preset: null`` runs on data the user already has."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from expr_common.data.refs import SPLITS
from expr_experiment.layout import ARMS, BASELINE_ROW
from recognizer.ablation import ROWS


@dataclass
class GenerateStep:
    domain: str | None = None  # whose style the GAN draws (None: the chain's target)
    fill_to_max: bool = True  # top every class up to the largest real class (else counts or per_class)
    per_class: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # class -> samples, e.g. {Disgust: 62, Fear: 62}
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
    sources: list[str] | None = None  # data-config source names (None: the chain's sources)
    val_sources: list[str] | None = None  # its checkpoint is chosen on these (None: its sources)
    modalities: list[str] = field(default_factory=lambda: ["v", "av"])  # cells fine-tuned from it
    freeze_epochs: int = 0  # train.freeze_epochs of the fine-tuned cells (the loaded branch held still)
    overrides: list[str] = field(default_factory=list)  # --set style, for the pre-training run only
    # Every arm and every V / V+A ablation cell starts from the pre-training run (the paper's recipe:
    # pre-train on the sources, fine-tune on the target) instead of only the listed cells beside their
    # from-scratch twins; the baseline, and the judge that scores the edits, are then the pre-trained model.
    start_arms: bool = False

    def __post_init__(self) -> None:
        if self.start_arms and not self.enabled:
            raise ValueError("pretrain.start_arms needs pretrain.enabled: true")
        if self.sources is not None and not self.sources:
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
    source: str | None = None  # the data-config source whose training windows are edited (None: target)
    source_classes: list[str] = field(default_factory=list)  # empty: windows of every class
    fill_to_max: bool = True  # else counts or per_class
    per_class: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # class -> edits, e.g. {Disgust: 62, Fear: 62}
    clip_len: int = 8  # frames per edited clip (at most the cache's K)
    seed: int = 0
    # Keep only the edits the baseline (seed 0, trained on real target data) names by their class; the arm
    # trains on those, and seed 1's baseline, which chose none of them, measures their class fidelity.
    filter: bool = False


@dataclass
class ChainConfig:
    # `expr-data synth` preset written to data/synthetic_<preset> first; None: the data config's own data
    preset: str | None = "demo"
    corpus_seed: int = 0
    data: str = "configs/data/synthetic_demo.yaml"
    target: str = "affwild2"  # the source the recognizer learns and is scored on; the GAN's target style
    sources: list[str] = field(default_factory=lambda: ["afew", "ckplus"])  # teach the GAN (+ source-real)
    # The arms' (baseline's) modality: "v" for image-only targets. Never "a": the GAN's faces need eyes.
    modality: Literal["v", "av"] = "av"
    # Where the arms are scored: "test" evaluates each run's best checkpoint (fusion and smoothing chosen on
    # validation) on the target's test split; "val" (a target without labelled test rows: Aff-Wild2, and
    # chain folders written before this key) reports the validation score that chose them.
    score_split: Literal["val", "test"] = "val"
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
    # + classic augmentation: the target's own training faces added again, augmented afresh, as many per
    # class as + synthetic adds (`recognizer train --with-augmented-copies`): what a GAN must beat.
    augmented_arm: bool = False

    @property
    def arms(self) -> tuple[str, ...]:
        """The recognizer arms this chain trains (the baseline is the full model's ablation cell in the
        chain's modality)."""
        return (
            *ARMS,
            *(("augmented",) if self.augmented_arm else ()),
            *(("edited",) if self.edit.enabled else ()),
        )

    @property
    def generate_domain(self) -> str:
        return self.generate.domain or self.target

    @property
    def edit_source(self) -> str:
        return self.edit.source or self.target

    @property
    def pretrain_sources(self) -> list[str]:
        return self.pretrain.sources if self.pretrain.sources is not None else list(self.sources)

    @property
    def pretrain_val_sources(self) -> list[str]:
        return self.pretrain.val_sources if self.pretrain.val_sources is not None else self.pretrain_sources

    @property
    def pretrained_cells(self) -> list[str]:
        """The modalities whose full-model cells are fine-tuned from the pre-training beside their
        from-scratch twins (none when every arm starts from it)."""
        enabled = self.pretrain.enabled and not self.pretrain.start_arms
        return list(self.pretrain.modalities) if enabled else []

    @property
    def data_sets(self) -> list[str]:
        """The chain's data config and its ``data_overrides`` as ``--set`` values for the GAN and recognizer
        configs (whatever data their own YAML names)."""
        overrides = [f"data_overrides=[{','.join(self.data_overrides)}]"] if self.data_overrides else []
        return [f"data={self.data}", *overrides]

    @property
    def gan_sets(self) -> list[str]:
        """The GAN learns every source of the data config and draws the target's style by default."""
        return [*self.data_sets, f"target_domain={self.target}"]

    @property
    def edit_gan_sets(self) -> list[str]:
        """The editing GAN learns what each class looks like from the sources' labels."""
        return [*self.gan_sets, f"model.edit.label_domains=[{','.join(self.sources)}]"]

    @property
    def recognizer_sets(self) -> list[str]:
        """The recognizer trains and validates on the target; + source-real adds the sources."""
        target = f"[{self.target}]"
        return [
            *self.data_sets,
            f"train.train_sources={target}",
            f"train.val_sources={target}",
            f"extra_policies.source_real_sources=[{','.join(self.sources)}]",
        ]

    def __post_init__(self) -> None:
        if self.preset and self.score_split == "test":
            raise ValueError(
                "score_split test: the procedural corpus's Aff-Wild2-style test split is unlabelled"
            )
        for name, step in (("generate", self.generate), ("edit", self.edit)):
            if step.counts and step.fill_to_max:
                raise ValueError(f"{name}: give counts or fill_to_max, not both")
        if BASELINE_ROW not in self.ablation_rows or self.modality not in self.ablation_modalities:
            raise ValueError(
                f"the chain's baseline arm is the gcsa_cf / {self.modality} ablation cell: keep both "
                "(ablation_rows, ablation_modalities)"
            )
        if not self.sources or self.target in self.sources:
            raise ValueError("sources must name at least one data-config source, and not the target")
        if self.seeds < 1 or self.jobs < 1 or not 1 <= self.ablation_seeds <= self.seeds:
            raise ValueError("seeds and jobs must be >= 1, and 1 <= ablation_seeds <= seeds")
        missing = [m for m in self.pretrain.modalities if m not in self.ablation_modalities]
        if self.pretrain.enabled and not self.pretrain.start_arms and missing:
            raise ValueError(f"pretrain.modalities {missing} are not in ablation_modalities (baselines)")
