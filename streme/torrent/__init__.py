"""P2P: the libtorrent engine, piece scheduling, and streaming readers."""
