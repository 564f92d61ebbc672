"""Add-ons installed by `cluster up`, as objects in the API (they run as ordinary pods).

Each room that provides an add-on exposes `install(client, cfg)` in its `addon` module.
"""

from __future__ import annotations

import importlib
import logging

log = logging.getLogger("netsim.addons")

ADDONS = ["netsim.dns.addon", "netsim.ingress.addon"]


def install(client, cfg) -> None:
    for mod in ADDONS:
        try:
            m = importlib.import_module(mod)
        except ImportError:
            continue
        try:
            m.install(client, cfg)
        except Exception:
            log.exception("add-on %s failed to install", mod)
