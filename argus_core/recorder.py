"""``argus record``: write any venue's normalised live stream to NDJSON for replay."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from argus_core.config import Config
from argus_core.runtime import build, load_host, validate_settings
from argus_core.serde import dump_event


async def record(config: Config, out_path: Path, *, duration_s: float,
                 max_events: int | None = None) -> int:
    """Record ``config.run.venue``'s stream for ``duration_s`` seconds; returns the count.

    Lines are flushed as they arrive so a recording cut short is still valid
    up to its last complete line.
    """
    host = load_host(config)
    settings = validate_settings(config, host)
    venue = build(host, settings, "venue", config.run.venue)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + duration_s
    count = 0

    async def pump() -> None:
        nonlocal count
        with open(out_path, "w") as fh:
            async for event in venue.stream():
                fh.write(json.dumps(dump_event(event), separators=(",", ":")) + "\n")
                fh.flush()
                count += 1
                if (max_events is not None and count >= max_events) or \
                        time.monotonic() >= deadline:
                    return

    try:
        await asyncio.wait_for(pump(), timeout=max(duration_s, 0.001))
    except TimeoutError:
        pass
    finally:
        await venue.close()
    return count
