"""The real-data bench: the toolkit's own commands on small public sets, beside plain references trained in
the same run on the same splits and epochs (issue 27).

The sets live outside the repository, one ``<set>/manifest.csv`` each (SFEW, TWDB, JAFFE, EmoDB,
CREMA-D: docs/results.md, "Real data", names their public sources). For each trained set and seed: ``expr-data
prepare``, ``recognizer train`` (a config that names only the data, the modality, the epochs and the
seed: the toolkit's defaults), ``recognizer evaluate --split test`` on its ``best.pt``; then the plain
reference (realbench_plain.py) on the
same cache. ``cremad`` runs ``recognizer predict --video`` on the CREMA-D clips with the first seed's SFEW
(else TWDB) model and EmoDB model, and counts the frames with a face and the windows with sound (a smoke
check, no score). Seeds run one after another.

Usage: python benchmarks/realbench.py --bench DIR [--seeds 0,1,2] [--epochs 30] [--only sfew,emodb]
           [--set KEY=VALUE ...] [--work runs/realbench] --json OUT
``--set`` passes a recognizer override to every training (a lever to measure against the defaults).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
sys.path = [p for p in sys.path if Path(p or ".").resolve() != _HERE] + [str(_HERE)]

from common import machine  # noqa: E402
from realbench_plain import fit_plain  # noqa: E402
from realbench_sets import (  # noqa: E402
    PRETRAIN_SETS,
    SETS,
    BenchSet,
    data_config,
    pretrain_config,
    recognizer_config,
    write_yaml,
)
from realbench_table import build_table, run_record, text_table  # noqa: E402

from expr_common.data.dataset import CachedClips  # noqa: E402
from expr_common.paths import repo_root  # noqa: E402
from expr_common.runs import read_metrics  # noqa: E402

BIN = Path(sys.executable).parent
MODEL_CHOICES = ("recognizer", "plain", "recognizer_pretrained")
ENV = {**os.environ, "EXPR_PROGRESS": "0"}


def command(args: list[str], log: Path) -> float:
    """Run a toolkit command with its output in ``log``; the seconds it took. A failure stops the bench."""
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with log.open("w", encoding="utf-8") as handle:
        done = subprocess.run(args, stdout=handle, stderr=subprocess.STDOUT, env=ENV, check=False)
    if done.returncode != 0:
        raise SystemExit(f"realbench: {' '.join(args[:2])} failed (exit {done.returncode}); see {log}")
    return time.perf_counter() - started


def prepare(name: str, config: dict, work: Path) -> tuple[Path, Path]:
    """``expr-data prepare`` of one data config: its YAML and its prepared cache."""
    data_yaml = write_yaml(work / "configs" / f"{name}.yaml", config)
    command(
        [str(BIN / "expr-data"), "prepare", "--config", str(data_yaml)],
        work / "logs" / f"{name}_prepare.log",
    )
    return data_yaml, Path(config["cache"]["root"])


def recognizer_run(
    name: str, modality: str, data: tuple[Path, Path], args: argparse.Namespace, seed: int, *extra: str
) -> dict[str, Any]:
    """``recognizer train`` (with the bench's ``--set`` overrides and ``extra`` arguments) and ``evaluate
    --split test`` of one seed, in ``runs/<name>/seed<seed>``; its record and the checkpoint evaluated."""
    (data_yaml, cache), work = data, args.work
    run = work / "runs" / name / f"seed{seed}"
    rec_yaml = write_yaml(work / "configs" / f"{name}_recognizer_seed{seed}.yaml",
                          recognizer_config(data_yaml, modality, args.epochs, seed))  # fmt: skip
    train = [
        str(BIN / "recognizer"),
        "train",
        "--config",
        str(rec_yaml),
        "--run-dir",
        str(run),
        "--overwrite",
    ]
    train += [item for o in args.overrides for item in ("--set", o)] + list(extra)
    seconds = command(train, work / "logs" / f"{name}_recognizer_seed{seed}.log")
    best = run / "checkpoints" / "best.pt"
    evaluate = [str(BIN / "recognizer"), "evaluate", "--checkpoint", str(best)]
    evaluate += ["--split", "test", "--run-dir", str(run / "test"), "--overwrite"]
    command(evaluate, work / "logs" / f"{name}_evaluate_seed{seed}.log")
    metrics = json.loads((run / "test" / "metrics.json").read_text(encoding="utf-8"))
    n_train = len(CachedClips(cache, split="train", labelled_only=True))
    loop = [r["train_clips_per_s"] for r in read_metrics(run / "metrics.jsonl") if "train_clips_per_s" in r]
    record = run_record(seed, metrics, seconds, args.epochs * n_train)
    record["loop_items_per_s"] = round(statistics.median(loop), 1) if loop else None
    return record | {"checkpoint": str(best)}


def pretrained_run(bench_set: BenchSet, data: tuple[Path, Path], args, seed: int) -> dict[str, Any]:
    """The paper's initial pre-training: V trained on the posed sets (TWDB + JAFFE), then on the target set
    from that checkpoint (``--init-from``), the same epochs and seed for each stage."""
    posed = prepare("posed", pretrain_config(args.bench, args.work / "cache"), args.work)
    first = recognizer_run("posed", "v", posed, args, seed)
    record = recognizer_run(
        f"{bench_set.name}_pretrained", "v", data, args, seed, "--init-from", first["checkpoint"]
    )
    return record | {"pretrain_macro_f1_on_posed_test": first["macro_f1"]}


def plain_run(bench_set: BenchSet, cache: Path, epochs: int, seed: int) -> dict[str, Any]:
    result = fit_plain(cache, bench_set.modality, epochs, seed)
    return run_record(seed, result["metrics"], result["train_s"], result["items"])


def cremad_smoke(bench: Path, work: Path) -> dict[str, Any]:
    """``predict --video`` on the CREMA-D clips with a face model and a speech model of this work folder."""
    with SETS["cremad"].manifest(bench).open(encoding="utf-8") as handle:
        videos = sorted({row["frames"] for row in csv.DictReader(handle) if row["frames"]})
    models = {"v": ["sfew", "twdb"], "a": ["emodb"]}
    out: dict[str, Any] = {"videos": len(videos)}
    for modality, names in models.items():
        found = [work / "runs" / n / "seed0" / "checkpoints" / "best.pt" for n in names]
        checkpoint = next((c for c in found if c.is_file()), None)
        if checkpoint is None:
            out[modality] = f"no trained {' or '.join(names)} model in {work / 'runs'}: bench those first"
            continue
        target = work / "cremad" / modality
        cmd = [str(BIN / "recognizer"), "predict", "--checkpoint", str(checkpoint), "--video", *videos]
        command(cmd + ["--out", str(target), "--overwrite"], work / "logs" / f"cremad_{modality}.log")
        out[modality] = {"checkpoint": str(checkpoint), **frames_summary(target)}
    return out


def frames_summary(folder: Path) -> dict[str, Any]:
    """Per recording of a ``predict --video`` folder: frames, the share with a face, the share with sound."""
    per = {}
    for frames_csv in sorted(folder.glob("*/frames.csv")):
        with frames_csv.open(encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        n = max(1, len(rows))
        per[frames_csv.parent.name] = {
            "frames": len(rows),
            "face_share": round(sum(r["has_face"] == "1" for r in rows) / n, 3),
            "audio_share": round(sum(r["has_audio"] == "1" for r in rows) / n, 3),
        }
    return {"recordings": per}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bench", type=Path, required=True, help="the folder build_realbench.py wrote")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--only", default=",".join(SETS), help="comma-separated set names")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    models = ", ".join(MODEL_CHOICES)
    parser.add_argument("--models", default="recognizer,plain", help=f"any of {models} (pre-trained: sfew)")
    parser.add_argument("--work", type=Path, default=repo_root() / "runs" / "realbench")
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args(argv)
    args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    if not args.models or set(args.models) - set(MODEL_CHOICES):
        parser.error(f"--models: any of {', '.join(MODEL_CHOICES)}")
    unknown = [s for s in args.only if s not in SETS]
    if unknown:
        parser.error(f"--only: unknown sets {', '.join(unknown)}; the bench has {', '.join(SETS)}")
    return args


def bench_set_runs(bench_set: BenchSet, args: argparse.Namespace) -> dict[str, list]:
    data = prepare(bench_set.name, data_config(bench_set, args.bench, args.work / "cache"), args.work)
    runs: dict[str, list] = {model: [] for model in args.models}
    pretrain = "recognizer_pretrained" in args.models and bench_set.modality == "v"
    pretrain = pretrain and bench_set.name not in PRETRAIN_SETS  # the posed sets are what it pre-trains on
    for seed in args.seeds:
        if "recognizer" in args.models:
            runs["recognizer"].append(recognizer_run(bench_set.name, bench_set.modality, data, args, seed))
        if "plain" in args.models:
            runs["plain"].append(plain_run(bench_set, data[1], args.epochs, seed))
        if pretrain:
            runs["recognizer_pretrained"].append(pretrained_run(bench_set, data, args, seed))
        scores = ", ".join(f"{model} {r[-1]['macro_f1']:.3f}" for model, r in runs.items() if r)
        print(f"{bench_set.name} seed {seed}: {scores}", flush=True)
    return runs


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    runs, missing, extra = {}, {}, {}
    for name in args.only:
        bench_set = SETS[name]
        if not bench_set.manifest(args.bench).is_file():
            missing[name] = f"{bench_set.manifest(args.bench)} is not there: build it with build_realbench.py"
            print(f"{name}: {missing[name]}", flush=True)
        elif bench_set.trained:
            runs[name] = bench_set_runs(bench_set, args)
        else:
            extra[name] = cremad_smoke(args.bench, args.work)
    table = build_table(runs)
    table["sets"].update(extra)
    table |= {"missing": missing, "date": time.strftime("%Y-%m-%d"), "machine": machine()}
    table["settings"] = {"epochs": args.epochs, "seeds": args.seeds, "overrides": args.overrides}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(table, indent=2) + "\n", encoding="utf-8")
    print(text_table({"sets": {k: v for k, v in table["sets"].items() if k in runs}}))
    print(json.dumps(extra, indent=2) if extra else "", end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
