"""Add-ons installed by `cluster up`, as objects in the API (they run as ordinary pods).

Each room that provides an add-on exposes `install(client, cfg)` in its `addon` module.
"""

from __future__ import annotations

from netsim.controllers import persistentvolume as storage_addon
from netsim.dns import addon as dns_addon
from netsim.ingress import addon as ingress_addon

# Plain imports and no catch-all: a broken add-on stops the control plane at startup with
# its traceback in controlplane.log, instead of a cluster that silently lacks DNS or ingress.
ADDONS = [dns_addon, ingress_addon, storage_addon]  # storage: kind's default StorageClass


def install(client, cfg) -> None:
    for addon in ADDONS:
        addon.install(client, cfg)
