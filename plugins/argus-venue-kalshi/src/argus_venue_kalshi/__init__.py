"""Argus venue plugin for Kalshi (entry point ``kalshi``; hooks in ``plugin``).

Modules, one job each: ``config`` (``[plugins.kalshi]``), ``constants`` (Kalshi's fixed
facts), ``instruments`` (markets -> instruments and events), ``fees`` (the fee formula),
``signing`` (RSA-PSS request signatures), ``rest`` (Trade API v2 client), ``books``
(websocket books with sequence checks), ``data`` (the market-data stream), ``execution``
(orders), ``venue`` (assembles them), ``testing`` (a local Kalshi exchange).
"""
