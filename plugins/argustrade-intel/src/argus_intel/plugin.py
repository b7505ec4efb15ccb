"""The Argus entry point of argustrade-intel.

The API registers no trading component: it only reads.  Its commands (``argus intel
serve`` and ``argus intel keys ...``) are :mod:`argus_intel.commands`, entry point group
``argus.commands``; this module exists so that ``argus plugins`` lists the distribution.
"""

from __future__ import annotations
