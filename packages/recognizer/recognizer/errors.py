"""What the ``recognizer`` command lines print as one line (exit code 2) instead of a traceback."""

from __future__ import annotations

from expr_common.checkpoint import CheckpointError
from expr_common.config import ConfigError

# FileNotFoundError: a dataset root, a checkpoint or a config that is not there.
USER_ERRORS: tuple[type[Exception], ...] = (ConfigError, CheckpointError, FileNotFoundError, ValueError)
