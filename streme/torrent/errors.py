"""P2P failures. Each carries a stable `code`; the HTTP status for it is the route's business."""

from __future__ import annotations


class P2PError(Exception):
    """A P2P failure; `code` names it in logs and in the route's JSON error body."""

    code = "p2p_error"


class MetadataTimeout(P2PError):
    code = "metadata_timeout"


class PieceStalled(P2PError):
    code = "stalled"


class NoPeers(P2PError):
    code = "no_peers"


class CoolingDown(P2PError):
    code = "cooldown"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AtCapacity(P2PError):
    code = "capacity"


class ShuttingDown(P2PError):
    code = "shutting_down"


class DiskFull(P2PError):
    code = "disk_full"
