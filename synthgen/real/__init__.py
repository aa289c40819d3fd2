"""Real face data in the row contract: importers for common layouts and an offline demo reference."""

from synthgen.real.demo import build_demo_reference
from synthgen.real.importers import (
    import_fairface,
    import_folder,
    import_gaze,
    import_rafdb,
    import_utkface,
)
from synthgen.real.rows import BadRow, ImportResult
from synthgen.reference import read_reference as read_real

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
