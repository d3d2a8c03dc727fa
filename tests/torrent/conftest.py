"""Fixtures for the P2P tests: independent BitTorrent programs (see peers.py). The
session's opentracker, `tracker`, is in tests/conftest.py (tests/e2e uses it too)."""

from tests.torrent.peers import aria2_seeder, processes, transmission_seeder

__all__ = ["aria2_seeder", "processes", "transmission_seeder"]
