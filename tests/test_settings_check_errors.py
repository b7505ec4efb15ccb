"""A plugin's settings class whose own check (``__attrs_post_init__``) raises something
other than ``ValueError`` is reported as that: cattrs read a ``KeyError`` as "required
field missing" (a newcomer hunted for a key that was there) and anything else as
"unknown error".  A field really missing still says so."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest

from argus_core.config import parse_config, plugin_settings
from argus_core.errors import ConfigError


@attrs.frozen
class Settings:
    """A plugin's settings with checks of its own."""

    required: int
    mode: int = 2

    def __attrs_post_init__(self) -> None:
        if self.mode == 3:
            raise KeyError("mode_table")
        if self.mode == 4:
            raise RuntimeError("mode 4 needs a licence file")


@pytest.mark.parametrize(("table", "said"), [
    ({"required": 1, "mode": 3}, "the settings' own check raised KeyError: 'mode_table' "
                                 "@ plugins.mine"),
    ({"required": 1, "mode": 4}, "the settings' own check raised RuntimeError: mode 4 needs "
                                 "a licence file @ plugins.mine"),
    ({"mode": 2}, "required field missing @ plugins.mine.required"),
    ({"required": "x"}, "@ plugins.mine.required"),
])
def test_the_error_says_what_the_check_raised(table: dict[str, Any], said: str,
                                              tmp_path: Path) -> None:
    config = parse_config({"argus": {"plugins": []}, "plugins": {"mine": table}},
                          tmp_path / "c.toml")
    with pytest.raises(ConfigError) as caught:
        plugin_settings(config, "mine", Settings)
    assert said in str(caught.value)
