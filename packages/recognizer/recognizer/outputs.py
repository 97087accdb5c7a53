"""The files a recognizer training run writes beside the run contract's (``expr_common.runs``); the
ablation and the experiment's report read them by these names."""

from __future__ import annotations

DATA_CONFIG_FILE = "data_config.yaml"  # the data config the run trained on, resolved (preprocessing)
EXTRA_DATA_FILE = "extra_data.json"  # what each extra training set added, per class
SELECTION_FILE = "selection.json"  # the (m, n) fusion and smoothing window chosen on validation
CONFUSION_FILE = "confusion_val.png"  # validation confusion of the best checkpoint, after the selection
FUSION_GRID_FILE = "fusion_grid.png"
SUMMARY_FILE = "summary.json"  # recognizer ablate: written last, its presence marks a finished sub-run
ABLATION_JSON, ABLATION_MD = "ablation.json", "ablation.md"  # recognizer ablate: the table over every cell
