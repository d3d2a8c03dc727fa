"""The cache directory: infohash parsing, the infohash index, and the lookup rules."""
