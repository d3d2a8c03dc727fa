"""Units for sizes and durations, so config values read as `16 * KiB` or `5 * SECONDS`."""

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

SECONDS = 1.0
MINUTES = 60 * SECONDS
