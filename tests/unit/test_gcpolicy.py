"""The daemons' collector settings: a larger young generation, and what is loaded frozen."""

from __future__ import annotations

import gc

from netsim import gcpolicy


def test_for_daemon_sets_the_young_threshold_and_freezes_what_is_alive():
    before = gc.get_threshold()
    try:
        gcpolicy.for_daemon()
        assert gc.get_threshold() == (gcpolicy.YOUNG_THRESHOLD, *before[1:])
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
