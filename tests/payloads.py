"""A pickle payload that proves a loader executed code: unpickling it creates a marker file."""

from __future__ import annotations

import builtins
import os
from pathlib import Path


class RunsCode:
    """Pickles to a call that creates ``marker``: via ``os.system("touch …")`` or ``builtins.open(…, "w")``.

    A loader that refuses the pickle leaves no marker; one that unpickles it creates the file.
    """

    def __init__(self, marker: str | Path, via: str = "system") -> None:
        if via not in ("system", "open"):
            raise ValueError(f"via must be 'system' or 'open', got {via!r}")
        self.marker, self.via = str(marker), via

    def __reduce__(self):
        if self.via == "open":
            return (builtins.open, (self.marker, "w"))
        return (os.system, (f"touch {self.marker}",))
