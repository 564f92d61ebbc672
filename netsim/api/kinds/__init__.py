"""Per-kind defaulting and validation; importing this package registers them all."""

from netsim.api.kinds import core  # noqa: F401
from netsim.api.kinds import apps  # noqa: F401
from netsim.api.kinds import service  # noqa: F401
