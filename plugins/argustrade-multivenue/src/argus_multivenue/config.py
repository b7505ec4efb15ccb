"""``[plugins.multivenue]``: which registered venues the composite runs together.

Example::

    [plugins.multivenue]
    venues = ["replay", "vrp_options"]   # registered venue names, in tie-break order
    config = "all_three.toml"            # the file holding their [plugins.<plugin>] tables
                                         # (normally this very file; relative to it)

Each inner venue keeps its settings in its usual table (``[plugins.replay]``,
``[plugins.vrp]``...), where its plugin's strategies read them too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs


def _venue_names(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{attribute.name}: must be a list of registered venue names, "
                         f"got {value!r}")
    dupes = sorted({v for v in value if value.count(v) > 1})
    if dupes:
        raise ValueError(f"{attribute.name}: {', '.join(dupes)} listed more than once")
    if "multivenue" in value:
        raise ValueError(f"{attribute.name}: a multivenue cannot contain itself")


@attrs.frozen
class MultiVenueSettings:
    """Settings of the ``multivenue`` venue (``[plugins.multivenue]``)."""

    #: Registered venue names; on equal event times the earlier venue's event comes first.
    venues: list[str] = attrs.field(factory=list, validator=_venue_names)
    #: The config file whose ``[argus] plugins`` and ``[plugins.*]`` tables build the inner
    #: venues (a venue factory receives only its own plugin's settings, so the composite
    #: reads the file itself).  Relative to the config file; normally that file itself.
    config: Path | None = None
