"""Where the shared data lives when a command is not told: the one default data root.

Training, export calibration, the benchmarks and the tests all read the stems from
the same folder, ``shared/data`` beside the repository (``../shared/data`` from a
checkout). ``$ACAPELLA_DATA`` names another folder for all of them at once.
"""
from __future__ import annotations

import os
from pathlib import Path

ENV = "ACAPELLA_DATA"


def default_data_root(beside: str | os.PathLike | None = None) -> Path:
    """The data root: ``$ACAPELLA_DATA`` if set, else a ``shared/data`` folder beside a checkout.

    ``beside`` is the checkout a script belongs to (a benchmark passes its own
    repository): its ``../shared/data`` is the answer, whether or not it exists yet,
    so the caller can say which folder it looked for. Without it, the first
    ``../shared/data`` found beside the working directory, then beside the checkout
    this package was installed from (editable installs), else ``../shared/data``.
    The working directory comes first because an installed (non-editable) package
    lives in site-packages, far from any data.
    """
    if os.environ.get(ENV):
        return Path(os.environ[ENV])
    if beside is not None:
        return Path(beside).resolve().parent / "shared" / "data"
    for base in (Path.cwd(), Path(__file__).resolve().parents[1]):
        if (base.parent / "shared" / "data").is_dir():
            return base.parent / "shared" / "data"
    return Path("..") / "shared" / "data"
