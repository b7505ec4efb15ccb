"""Finding plugins from installed metadata alone: the entry-point groups, which plugins a
person blocked, the sub-commands plugins declare, and what to install when one is
missing.  Nothing here imports a plugin (or pluggy), so ``argus --help`` stays fast;
:mod:`argus_core.plugins` hosts the plugins it finds."""

from __future__ import annotations

import importlib.metadata as md
import os

ENTRY_POINT_GROUP = "argus"
#: ``argus`` sub-commands, one entry point each (``name = "module:click_command"``): listed
#: from installed metadata and imported only when that command runs.
COMMANDS_GROUP = "argus.commands"
BLOCK_ENV = "ARGUS_BLOCK_PLUGINS"

#: Where the first-party plugins come from, for "not installed" remedies.
KNOWN_DISTRIBUTIONS = {
    "polymarket": "argus-venue-polymarket", "kraken": "argus-venue-kraken",
    "kalshi": "argus-venue-kalshi", "negrisk": "argus-scanner-negrisk",
    "pmscanners": "argus-scanners-polymarket", "vrp": "argus-strategy-vrp",
    "heston": "argus-gpu-heston", "lab": "argustrade-lab",
    "orchestrator": "argustrade-orchestrator", "ml": "argustrade-ml",
    "portfolio": "argustrade-portfolio", "overnight": "argustrade-overnight",
    "monitor": "argustrade-monitor", "crossvenue": "argustrade-crossvenue",
    "tearsheet": "argustrade-tearsheet", "dashboard": "argustrade-dashboard",
    "telegram": "argustrade-telegram", "intel": "argustrade-intel",
    "multivenue": "argustrade-multivenue",
}

#: The core's distribution name on the package registry (``argus-core`` there is an
#: unrelated product; the import package stays ``argus_core``).
CORE_DISTRIBUTION = "argustrade-core"


def blocked_plugins() -> set[str]:
    """Names listed in ``ARGUS_BLOCK_PLUGINS`` (comma separated)."""
    return {n.strip() for n in os.environ.get(BLOCK_ENV, "").split(",") if n.strip()}


def command_entry_points() -> dict[str, md.EntryPoint]:
    """Sub-commands installed plugins declare in ``argus.commands`` (nothing imported).

    A command is left out when its distribution's plugin is blocked
    (``ARGUS_BLOCK_PLUGINS``), so blocking a plugin hides its commands too."""
    blocked = blocked_plugins()
    out: dict[str, md.EntryPoint] = {}
    for ep in md.entry_points(group=COMMANDS_GROUP):
        plugins = {p.name for p in (ep.dist.entry_points if ep.dist else ())
                   if p.group == ENTRY_POINT_GROUP}
        if ep.name in blocked or plugins & blocked:
            continue
        out.setdefault(ep.name, ep)
    return out


def remedy_for(name: str) -> str:
    """What to tell a user whose config names a plugin that is not installed."""
    dist = KNOWN_DISTRIBUTIONS.get(name)
    if dist:
        return f"pip install {dist} (or pip install -e plugins/{dist} from a checkout)"
    return (f"install the distribution that declares "
            f"[project.entry-points.{ENTRY_POINT_GROUP}] {name} = ...")
