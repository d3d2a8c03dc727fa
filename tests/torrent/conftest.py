"""Fixtures for the P2P tests: independent BitTorrent programs (see peers.py)."""

from tests.torrent.peers import aria2_seeder, opentracker, processes, transmission_seeder

__all__ = ["aria2_seeder", "opentracker", "processes", "transmission_seeder"]
