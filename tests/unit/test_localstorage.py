"""The kubelet's emptyDir sizeLimit check: usage as du counts it, upstream's message and the
evicted status (Failed, Evicted, DisruptionTarget)."""

from __future__ import annotations

import os

from netsim.kubelet import localstorage


def _pod(*vols) -> dict:
    return {"metadata": {"name": "hog", "namespace": "default", "uid": "u1"},
            "spec": {"volumes": list(vols)}}


def test_a_disk_empty_dir_over_its_limit(tmp_path):
    pdir = str(tmp_path)
    d = os.path.join(pdir, "volumes", "kubernetes.io~empty-dir", "scratch")
    os.makedirs(d)
    pod = _pod({"name": "scratch", "emptyDir": {"sizeLimit": "1Mi"}},
               {"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "1Ki"}},
               {"name": "free", "emptyDir": {}})
    with open(os.path.join(d, "small"), "wb") as f:
        f.write(b"x" * 100_000)
    assert localstorage.over_limit(pod, pdir) is None
    with open(os.path.join(d, "big"), "wb") as f:
        f.write(os.urandom(2 * 1024 * 1024))
    os.link(os.path.join(d, "big"), os.path.join(d, "same"))  # counted once
    assert 2 * 1024 * 1024 <= localstorage.disk_usage(d) < 3 * 1024 * 1024
    assert localstorage.over_limit(pod, pdir) == \
        'Usage of EmptyDir volume "scratch" exceeds the limit "1Mi". '


def test_evicted_status():
    old = {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": "t0"},
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": "t0"}]}
    msg = 'Usage of EmptyDir volume "scratch" exceeds the limit "1Mi". '
    new = localstorage.evicted_status(old, msg, "t1")
    assert (new["phase"], new["reason"], new["message"]) == ("Failed", "Evicted", msg)
    assert localstorage.is_evicted({"status": new})
    ready = next(c for c in new["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "PodFailed")
    dt = next(c for c in new["conditions"] if c["type"] == "DisruptionTarget")
    assert (dt["status"], dt["reason"], dt["message"]) == ("True", "TerminationByKubelet", msg)
