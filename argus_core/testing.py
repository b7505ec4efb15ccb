"""The test kit moved to its own distribution, ``argustrade-testkit`` (``argus_testkit``),
so the core stays the runtime; this alias keeps ``from argus_core.testing import ...``
working, for every name the kit defines (the module is the kit itself)."""

import sys

import argus_testkit

sys.modules[__name__] = argus_testkit
