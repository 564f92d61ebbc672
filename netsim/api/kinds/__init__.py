"""Per-kind defaulting and validation; importing this package registers them all."""

from netsim.api.kinds import (
    apps,  # noqa: F401
    core,  # noqa: F401
    networking,  # noqa: F401
    service,  # noqa: F401
)
