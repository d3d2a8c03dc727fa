"""A bare libtorrent client: the floor a seeder sets under any client's first byte.

perf.coldstart runs this as one more client, in its own process, so that a seeder's own
delay (aria2c answers a handshake on its one-second tick; transmission unchokes on its
ten-second round) is measured rather than argued: what no client can beat, streme is
compared against.

It is libtorrent with nothing of streme: a session on libtorrent's defaults but for
loopback (DHT, LSD, UPnP, NAT-PMP off, listening on 127.0.0.1, several connections from
127.0.0.1), outgoing uTP off (a TCP-only seeder would otherwise cost it 3 s: decision
0005) and a 100 ms tick (deadline pieces are requested on it). Once the session listens
it adds the magnet (whose `tr=` is the tracker) or the .torrent (plus the tracker),
downloading in file order with a deadline on each of the first 8 MiB's pieces, and
prints, as one JSON line, the seconds from the add to the first piece's bytes read back
(`read_piece_alert`: what a server could send) and to the first 8 MiB's pieces finished.
It exits at once after printing (no session teardown), or after `--timeout` with an
error.

    python -m perf.bareclient (--magnet URI | --torrent FILE --tracker URL) --save DIR
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import libtorrent as lt

from tests.torrent.swarm import LOOPBACK_SETTINGS

MiB = 1024 * 1024


def settings() -> lt.settings_pack:
    # The tests' loopback settings (their 100 ms tick: deadline pieces are requested on
    # it, so the floor is libtorrent's fastest start), TCP dialled first, alerts to time.
    return {
        **LOOPBACK_SETTINGS,
        "enable_outgoing_utp": False,
        "alert_mask": lt.alert_category.status
        | lt.alert_category.error
        | lt.alert_category.storage
        | lt.alert_category.piece_progress,
    }


def params_for(args: argparse.Namespace) -> lt.add_torrent_params:
    if args.magnet:
        params = lt.parse_magnet_uri(args.magnet)
    else:
        params = lt.add_torrent_params()
        params.ti = lt.torrent_info(args.torrent)
        params.trackers = [args.tracker]
    params.save_path = args.save
    params.flags |= lt.torrent_flags.sequential_download
    return params


def measure(args: argparse.Namespace) -> dict[str, float]:
    session = lt.session(settings())
    deadline = time.monotonic() + args.timeout
    while session.listen_port() == 0:  # as streme's, the session listens before the add
        if time.monotonic() > deadline:
            raise TimeoutError("the session never listened")
        time.sleep(0.005)
    handle = session.add_torrent(params_for(args))
    added = time.perf_counter()
    first_byte = eight_mib = None
    wanted: set[int] | None = None
    while first_byte is None or eight_mib is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no first byte and 8 MiB within {args.timeout:g} s")
        info = handle.torrent_file() if wanted is None else None
        if info is not None:
            count = min(info.num_pieces(), -(-8 * MiB // info.piece_length()))
            for piece in range(count):
                handle.set_piece_deadline(piece, 0, lt.deadline_flags_t.alert_when_available)
            wanted = {p for p in range(count) if not handle.have_piece(p)}
            if not wanted:
                eight_mib = time.perf_counter() - added
        session.wait_for_alert(10)
        for alert in session.pop_alerts():
            now = time.perf_counter() - added
            if isinstance(alert, lt.read_piece_alert) and alert.piece == 0 and first_byte is None:
                first_byte = now
            elif isinstance(alert, lt.piece_finished_alert) and wanted is not None:
                wanted.discard(alert.piece_index)
                if not wanted and eight_mib is None:
                    eight_mib = now
    return {"first_byte_s": first_byte, "first_8mib_s": eight_mib}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m perf.bareclient", description=__doc__)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--magnet")
    source.add_argument("--torrent")
    parser.add_argument("--tracker", help="with --torrent: the tracker to announce to")
    parser.add_argument("--save", required=True, help="where the download goes")
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args)), flush=True)
    os._exit(0)  # no teardown: the session's goodbyes to the tracker are not measured


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
