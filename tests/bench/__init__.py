"""Benchmarks: `python -m tests.bench.<name>` prints its figures, its headline last."""

import signal


def stop_on_sigterm() -> None:
    """SIGTERM (`timeout`, a CI runner's cancel) ends a bench as Ctrl-C does: through its
    `finally`, which takes its cluster down. Python's default for SIGTERM is to die on the
    spot, which left the cluster up."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
