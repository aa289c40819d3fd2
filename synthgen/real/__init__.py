"""Real face data in the row contract: importers for common layouts and an offline demo reference.

The names below are imported on first use (PEP 562): the ``synthgen real`` sub-command is
mounted on every CLI start, and the importers pull in OpenCV, the label schema and SciPy, which
``synthgen query`` has no use for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_WHERE = {
    "build_demo_reference": "synthgen.real.demo",
    "import_fairface": "synthgen.real.importers",
    "import_folder": "synthgen.real.importers",
    "import_gaze": "synthgen.real.importers",
    "import_rafdb": "synthgen.real.importers",
    "import_utkface": "synthgen.real.importers",
    "BadRow": "synthgen.real.rows",
    "ImportResult": "synthgen.real.rows",
    "read_real": "synthgen.real.rows",
}

__all__ = [
    "BadRow",
    "ImportResult",
    "build_demo_reference",
    "import_fairface",
    "import_folder",
    "import_gaze",
    "import_rafdb",
    "import_utkface",
    "read_real",
]

if TYPE_CHECKING:
    from synthgen.real.demo import build_demo_reference
    from synthgen.real.importers import (
        import_fairface,
        import_folder,
        import_gaze,
        import_rafdb,
        import_utkface,
    )
    from synthgen.real.rows import BadRow, ImportResult, read_real


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'synthgen.real' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
