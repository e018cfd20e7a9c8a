"""Command groups beyond run/checks/explain, one module each (logs, replication, bundle, ...).

Each module adds its commands to ``doctor.cli.app`` when imported; importing this
package imports them all.
"""

import importlib
import pkgutil

for _mod in pkgutil.iter_modules(__path__):
    if not _mod.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_mod.name}")
