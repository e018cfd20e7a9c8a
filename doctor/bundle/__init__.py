"""Support bundles: one ``.tar.gz`` with everything a colleague needs, secrets removed.

``writer`` collects and packs (``pgdoctor bundle``), ``reader`` opens one anywhere
(``pgdoctor analyze``), ``redaction`` is the glue that makes every file pass the
same redactor, ``logs`` and ``host`` gather what the facts do not hold.
"""

from __future__ import annotations


class BundleError(Exception):
    """A bundle cannot be written or read; the message is one line meant for a person."""
