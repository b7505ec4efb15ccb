"""Argus venue plugin for Polymarket (Gamma discovery, CLOB books and orders, CTF settlement).

Import :class:`argus_venue_polymarket.venue.PolymarketVenue` and
:class:`argus_venue_polymarket.config.PolymarketSettings` from their modules;
this package init stays light so the replay server starts without web3.
"""
