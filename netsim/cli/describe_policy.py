"""`describe poddisruptionbudget`: describePodDisruptionBudgetV1 of kubectl's
``pkg/describe/describe.go`` on netsim.cli.describe's writer."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from netsim.api.printing.format import meta_of, spec_of, status_of
from netsim.api.printing.printers import format_label_selector
from netsim.cli.describe import _PrefixWriter, describe_events


def describe_pdb(pdb: Mapping, related: Mapping, now: datetime) -> str:
    w = _PrefixWriter()
    meta, spec, status = meta_of(pdb), spec_of(pdb), status_of(pdb)
    w.write(0, f"Name:\t{meta.get('name', '')}\n")
    w.write(0, f"Namespace:\t{meta.get('namespace', '')}\n")
    if spec.get("minAvailable") is not None:
        w.write(0, f"Min available:\t{spec['minAvailable']}\n")
    elif spec.get("maxUnavailable") is not None:
        w.write(0, f"Max unavailable:\t{spec['maxUnavailable']}\n")
    if spec.get("selector") is not None:
        w.write(0, f"Selector:\t{format_label_selector(spec['selector'])}\n")
    else:
        w.write(0, "Selector:\t<unset>\n")
    w.write(0, "Status:\n")
    w.write(2, f"Allowed disruptions:\t{int(status.get('disruptionsAllowed') or 0)}\n")
    w.write(2, f"Current:\t{int(status.get('currentHealthy') or 0)}\n")
    w.write(2, f"Desired:\t{int(status.get('desiredHealthy') or 0)}\n")
    w.write(2, f"Total:\t{int(status.get('expectedPods') or 0)}\n")
    describe_events(w, related.get("events", []), now)
    return w.text()
