"""streme: a torrent streaming server. Cache hits are served zero-copy; misses from the swarm."""

__version__ = "0.1.0"
