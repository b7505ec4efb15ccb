"""Argus plugin ``tearsheet``: the trader's report and ``argus export``.

``report_sections`` adds performance against buy-and-hold, per-strategy P&L, a trades
table, open positions, monthly returns and offline Plotly charts to ``report.html``;
``argus export RUN_DIR`` writes trades, orders, fills and equity as CSV or Parquet.
"""

from __future__ import annotations

from argus_tearsheet.export import TABLES, export_run
from argus_tearsheet.plugin import tearsheet_sections

__all__ = ["TABLES", "export_run", "tearsheet_sections"]
