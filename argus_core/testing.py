"""The test kit moved to its own distribution, ``argustrade-testkit`` (``argus_testkit``),
so the core stays the runtime; this alias keeps ``from argus_core.testing import ...``
working."""

from argus_testkit import *  # noqa: F403  (the alias re-exports the kit's public names)
from argus_testkit import __all__ as __all__
