"""The label space: ABAW class names and order, every dataset's mapping into it, and the coarse groups.

This module is the one place that owns these facts; readers, losses, metrics and writers import them.
"""

from __future__ import annotations

from collections.abc import Mapping

# ABAW EXPR order. The index is the label everywhere in the toolkit.
CLASS_NAMES: tuple[str, ...] = (
    "Neutral",
    "Anger",
    "Disgust",
    "Fear",
    "Happiness",
    "Sadness",
    "Surprise",
    "Other",
)
NUM_CLASSES = len(CLASS_NAMES)
UNLABELLED = -1  # Aff-Wild2's "-1": never trained on, never scored
NEUTRAL, ANGER, DISGUST, FEAR, HAPPINESS, SADNESS, SURPRISE, OTHER = range(NUM_CLASSES)

# First line of every Aff-Wild2 EXPR annotation file, and the class columns of a test submission.
AFFWILD2_HEADER = ",".join(CLASS_NAMES)
SUBMISSION_HEADER = "image_location," + AFFWILD2_HEADER

# Rare classes in Aff-Wild2 (under 3% of annotated frames each): the ones that decide macro-F1.
RARE_CLASSES: tuple[int, ...] = (ANGER, DISGUST, FEAR)

# Share of annotated Aff-Wild2 frames per class (train / validation): docs/datasets.md, "Aff-Wild2".
AFFWILD2_TRAIN_SHARES: tuple[float, ...] = (0.303, 0.028, 0.018, 0.016, 0.163, 0.135, 0.054, 0.283)
AFFWILD2_VAL_SHARES: tuple[float, ...] = (0.293, 0.022, 0.019, 0.030, 0.123, 0.090, 0.044, 0.379)

# AFEW emotion folders (there is no Other class in AFEW).
AFEW_FOLDERS: Mapping[str, int] = {
    "Angry": ANGER,
    "Disgust": DISGUST,
    "Fear": FEAR,
    "Happy": HAPPINESS,
    "Neutral": NEUTRAL,
    "Sad": SADNESS,
    "Surprise": SURPRISE,
}
AFEW_FOLDER_OF: Mapping[int, str] = {v: k for k, v in AFEW_FOLDERS.items()}

# CK+ emotion codes as written in the Emotion/*_emotion.txt files; contempt has no ABAW class -> Other.
CKPLUS_CODE_NAMES: tuple[str, ...] = (
    "neutral",
    "anger",
    "contempt",
    "disgust",
    "fear",
    "happy",
    "sadness",
    "surprise",
)
CKPLUS_CODES: Mapping[int, int] = {
    0: NEUTRAL,
    1: ANGER,
    2: OTHER,
    3: DISGUST,
    4: FEAR,
    5: HAPPINESS,
    6: SADNESS,
    7: SURPRISE,
}
CKPLUS_CONTEMPT = 2

# Names used by common FER datasets and tools (FER2013, RAF-DB, AffectNet, ...), lower-case.
_ALIASES: Mapping[str, int] = {
    "neutral": NEUTRAL,
    "anger": ANGER,
    "angry": ANGER,
    "disgust": DISGUST,
    "disgusted": DISGUST,
    "fear": FEAR,
    "fearful": FEAR,
    "afraid": FEAR,
    "happiness": HAPPINESS,
    "happy": HAPPINESS,
    "joy": HAPPINESS,
    "sadness": SADNESS,
    "sad": SADNESS,
    "surprise": SURPRISE,
    "surprised": SURPRISE,
    "other": OTHER,
    "contempt": OTHER,
}


def label_name(index: int) -> str:
    """Name of an ABAW class index (``-1`` is ``"unlabelled"``)."""
    if index == UNLABELLED:
        return "unlabelled"
    if not 0 <= index < NUM_CLASSES:
        raise ValueError(f"label {index} is outside the ABAW range 0..{NUM_CLASSES - 1} (or -1)")
    return CLASS_NAMES[index]


def parse_label(value: str | int) -> int:
    """An ABAW index from an index (``3``, ``"3"``, ``-1``) or a class name in any common spelling."""
    if isinstance(value, bool):
        raise ValueError(f"label {value!r} is a boolean, not a class")
    if isinstance(value, int):
        index = value
    else:
        text = str(value).strip()
        try:
            index = int(text)
        except ValueError:
            key = text.lower()
            if key not in _ALIASES:
                known = ", ".join(CLASS_NAMES)
                raise ValueError(f"unknown label {value!r}: expected 0-7, -1 or one of {known}") from None
            return _ALIASES[key]
    if index != UNLABELLED and not 0 <= index < NUM_CLASSES:
        raise ValueError(f"label {index} is outside the ABAW range 0..{NUM_CLASSES - 1} (or -1)")
    return index


def ckplus_to_abaw(code: float | int) -> int:
    """ABAW index of a CK+ emotion code (the files hold floats such as ``3.0000000e+00``)."""
    as_float = float(code)
    if as_float != int(as_float) or int(as_float) not in CKPLUS_CODES:
        raise ValueError(f"CK+ emotion code {code!r} is not one of 0-7")
    return CKPLUS_CODES[int(as_float)]


def afew_folder_to_abaw(folder: str) -> int:
    """ABAW index of an AFEW emotion folder name (``Angry``, ``Happy``, ...; case-insensitive)."""
    for name, index in AFEW_FOLDERS.items():
        if name.lower() == folder.lower():
            return index
    raise ValueError(f"{folder!r} is not an AFEW emotion folder: expected one of {', '.join(AFEW_FOLDERS)}")


# Coarse groups for the coarse-fine loss: valence-arousal quadrants (the defaults of docs/method.md,
# "Coarse-fine granularity loss").
COARSE_GROUP_NAMES: tuple[str, ...] = ("Q1", "Q2", "Q3", "Q4")
DEFAULT_COARSE_GROUPS: tuple[int, ...] = (
    3,  # Neutral    -> Q4
    1,  # Anger      -> Q2
    1,  # Disgust    -> Q2
    1,  # Fear       -> Q2
    0,  # Happiness  -> Q1
    2,  # Sadness    -> Q3
    0,  # Surprise   -> Q1
    3,  # Other      -> Q4
)
# Six merged coefficients mu12 mu13 mu14 mu23 mu24 mu34: 0.5 where quadrants share an axis sign
# (adjacent: Q1-Q2, Q1-Q4, Q2-Q3, Q3-Q4), 1.0 where they are opposite (Q1-Q3, Q2-Q4).
DEFAULT_MU: tuple[float, ...] = (0.5, 1.0, 0.5, 0.5, 1.0, 0.5)
MU_PAIRS: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))


def mu_matrix(mu: tuple[float, ...] | list[float] = DEFAULT_MU) -> list[list[float]]:
    """The symmetric 4x4 coarse-penalty matrix from the six merged coefficients (zero diagonal)."""
    if len(mu) != len(MU_PAIRS):
        raise ValueError(
            f"expected {len(MU_PAIRS)} mu coefficients (mu12 mu13 mu14 mu23 mu24 mu34), got {len(mu)}"
        )
    matrix = [[0.0] * len(COARSE_GROUP_NAMES) for _ in COARSE_GROUP_NAMES]
    for (a, b), value in zip(MU_PAIRS, mu):
        matrix[a][b] = matrix[b][a] = float(value)
    return matrix
