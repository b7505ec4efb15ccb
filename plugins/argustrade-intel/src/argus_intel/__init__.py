"""An Argus plugin: the read-only intelligence API (``argus intel serve``), an HTTP API over
run ledgers and the plugins' analytics, behind hashed API keys with per-key rate limits and
daily quotas.  The app is :func:`argus_intel.app.create_app`."""
