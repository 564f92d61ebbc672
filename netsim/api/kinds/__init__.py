"""Per-kind decoding shapes, defaulting and validation.

Nothing registers on import: `netsim.api.admission.Admission` calls each module's
`register(registry, settings)` in this order.
"""

from netsim.api.kinds import (
    apps,
    batch,
    core,
    discovery,
    netpol,
    networking,
    policy,
    service,
    storage,
)

DEFAULT_KINDS = (core, apps, batch, service, networking, netpol, discovery, policy, storage)
