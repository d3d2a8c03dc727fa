"""How a torrent is added: `add_torrent_params` from resume data, a .torrent, or the hash."""

from __future__ import annotations

import logging
import os

import libtorrent as lt

from streme.cache.publish import download_dir, incomplete_root
from streme.config import P2PConfig
from streme.torrent.resume import read_resume

log = logging.getLogger("streme.p2p")


def add_params(
    config: P2PConfig, cache_root: str, infohash: str, static_peers: list[tuple[str, int]]
) -> lt.add_torrent_params:
    """From resume data if an earlier run (or an idle departure) left some, else
    `<infohash>.torrent` in the cache, else the bare infohash with the configured trackers."""
    torrent_file = os.path.join(cache_root, f"{infohash}.torrent")
    params = read_resume(incomplete_root(cache_root), infohash)
    if params is not None:
        log.info("Resuming %s from saved resume data", infohash)
    elif os.path.isfile(torrent_file):
        params = lt.add_torrent_params()
        params.ti = lt.torrent_info(torrent_file)
        # The configured trackers too: a LAN tracker knows peers the file's may not.
        params.trackers = list(config.trackers)
        log.info("Adding new torrent from %s", torrent_file)
    else:
        params = lt.add_torrent_params()
        params.info_hashes = lt.info_hash_t(lt.sha1_hash(bytes.fromhex(infohash)))
        params.trackers = list(config.trackers)
        log.info("Adding new torrent: %s (%d tracker(s))", infohash, len(config.trackers))
    params.save_path = download_dir(cache_root, infohash)
    # Static peers go into the add itself: libtorrent connects to the peers it knows
    # when the torrent starts, where `connect_peer` afterwards waits for the
    # session's next one-second connection round (half a second on average).
    params.peers = list(static_peers)
    # Not auto-managed: the queue would pause torrents beyond libtorrent's
    # `active_downloads` (3), and admission is `max_active_torrents`' job.
    # default_dont_download: no file is fetched until a reader wants it (see
    # `want_file`). Sequential: a stream is read from its start, and until the
    # reader's deadlines arrive the picker would otherwise fill the peers' request
    # queues with random pieces (a first byte after ~150 ms instead of ~10 ms).
    flags = lt.torrent_flags
    params.flags &= ~(flags.auto_managed | flags.paused | flags.upload_mode)
    params.flags |= flags.sequential_download | flags.default_dont_download
    if params.ti is not None:
        # The metadata is at hand: stay away from peers until a reader wants a file
        # (`ActiveTorrent.want_file` resumes it). Started wanting nothing, the torrent
        # is "finished", seeds drop it as a fellow seed, and libtorrent redials them only
        # after `min_reconnect_time`: the first byte came 2 s late. A HEAD costs nothing.
        params.flags |= flags.paused
    if config.download_rate_limit:
        params.download_limit = config.download_rate_limit
    if config.upload_rate_limit:
        params.upload_limit = config.upload_rate_limit
    params.max_connections = config.max_connections_per_torrent
    return params
