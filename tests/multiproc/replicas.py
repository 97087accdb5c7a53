"""Run a trainer's real entry point in every process of a 2-process launch and save, per rank, the
replica's final weights as ``OUT/rank<r>.pt`` (the replica tests compare them across ranks).

    torchrun --nproc_per_node 2 tests/multiproc/replicas.py recognizer OUT train --config ... --run-dir ...
    torchrun --nproc_per_node 2 tests/multiproc/replicas.py gan-script OUT --config ... --run-dir ...
    torchrun --nproc_per_node 2 tests/multiproc/replicas.py gan-module OUT train --config ... --run-dir ...

``recognizer`` is ``python -m recognizer``, ``gan-script`` runs packages/gan_aug/gan_aug/train.py as
``__main__``, ``gan-module`` is ``python -m gan_aug``. Nothing here changes how the trainers train: the
recognizer's weights are read when its loop hands over to ``finish`` (which reloads best.pt on every
rank, so after it they agree by construction); the GAN's from its trainer object once the command returns.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import torch

GAN_SCRIPT = Path(__file__).resolve().parents[2] / "packages" / "gan_aug" / "gan_aug" / "train.py"


def _save(out: Path, accelerator, states: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    info = {
        "process_index": accelerator.process_index,
        "num_processes": accelerator.num_processes,
        "distributed_type": str(accelerator.distributed_type),
    }
    torch.save({"info": info, **states}, out / f"rank{accelerator.process_index}.pt")


def recognizer(out: Path, argv: list[str]) -> int:
    import recognizer.trainer as trainer
    from recognizer.cli import main

    finish = trainer.finish

    def dump_then_finish(cfg, run, data, model, val_loader, accelerator):
        _save(out, accelerator, {"model": accelerator.unwrap_model(model).state_dict()})
        return finish(cfg, run, data, model, val_loader, accelerator)

    trainer.finish = dump_then_finish
    return main(argv)


def gan(out: Path, argv: list[str], script: bool) -> int:
    import gan_aug.trainer as trainer_module

    made = []

    class Recorded(trainer_module.GanTrainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    # Before gan_aug.training is imported (by either entry point), so that its GanTrainer is this one.
    trainer_module.GanTrainer = Recorded
    if script:
        sys.argv = [str(GAN_SCRIPT), *argv]
        try:
            runpy.run_path(str(GAN_SCRIPT), run_name="__main__")
            code = 0
        except SystemExit as done:
            code = int(done.code or 0)
    else:
        from gan_aug.cli import main

        code = main(argv)
    if code == 0:
        (trainer,) = made
        unwrap = trainer.accelerator.unwrap_model
        states = {"G": unwrap(trainer.G).state_dict(), "D": unwrap(trainer.D).state_dict()}
        _save(out, trainer.accelerator, {**states, "G_ema": trainer.generator_ema.state_dict()})
    return code


if __name__ == "__main__":
    which, out, *rest = sys.argv[1:]
    if which == "recognizer":
        sys.exit(recognizer(Path(out), rest))
    sys.exit(gan(Path(out), rest, script=which == "gan-script"))
