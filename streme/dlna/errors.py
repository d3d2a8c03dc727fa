"""The one error of the media server's start."""

from __future__ import annotations


class DlnaError(Exception):
    """The media server cannot start; the message says why and what to set."""
