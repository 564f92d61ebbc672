"""What every namespace holds for its pods' API access, as kube-controller-manager keeps it:

- the `default` ServiceAccount (upstream's serviceaccount-controller): created in every
  active namespace, and again when someone deletes it;
- the `kube-root-ca.crt` ConfigMap (upstream's root-ca-cert-publisher): the cluster CA under
  `ca.crt`, which the kubelet projects into pods next to their token so clients verify
  https://kubernetes.default.svc; put back as it was when edited or deleted.

One key per namespace; a terminating namespace is left alone. `root_ca` is the PEM the
control plane hands over (None: no ConfigMap is published).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from netsim.api import errors
from netsim.controllers.base import Controller
from netsim.machinery import InformerFactory, clone

DEFAULT_SA = "default"
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
DESCRIPTION_ANNOTATION = "kubernetes.io/description"
# upstream's words (pkg/controller/certificates/rootcacertpublisher)
DESCRIPTION = ("Contains a CA bundle that can be used to verify the kube-apiserver when using "
               "internal endpoints such as the internal service IP or kubernetes.default.svc. "
               "No other usage is guaranteed across distributions of Kubernetes clusters.")


class ServiceAccountController(Controller):
    """The `default` ServiceAccount and the `kube-root-ca.crt` ConfigMap in each namespace."""

    name = "serviceaccount-controller"
    watches = ("namespaces", "serviceaccounts", "configmaps")

    def __init__(self, client, root_ca: str | None = None,
                 informers: InformerFactory | None = None):
        super().__init__(client, informers)
        self.root_ca = root_ca

    def keys_for(self, resource: str, obj: dict) -> Iterable[str]:
        md = obj.get("metadata") or {}
        if resource == "namespaces":
            return [md.get("name", "")]
        mine = DEFAULT_SA if resource == "serviceaccounts" else ROOT_CA_CONFIGMAP
        return [md.get("namespace") or "default"] if md.get("name") == mine else []

    def reconcile(self, key: str) -> float | None:
        ns = self.lister("namespaces").get_by_name(key)
        if ns is None or ns["metadata"].get("deletionTimestamp") or \
                (ns.get("status") or {}).get("phase") == "Terminating":
            return None
        if self.lister("serviceaccounts").get_by_name(DEFAULT_SA, key) is None:
            with contextlib.suppress(errors.AlreadyExists):
                self.client.create({"apiVersion": "v1", "kind": "ServiceAccount",
                                    "metadata": {"name": DEFAULT_SA, "namespace": key}})
        if self.root_ca is not None:
            self._publish_ca(key)
        return None

    def _publish_ca(self, ns: str) -> None:
        data = {"ca.crt": self.root_ca}
        cur = clone(self.lister("configmaps").get_by_name(ROOT_CA_CONFIGMAP, ns))
        if cur is None:
            with contextlib.suppress(errors.AlreadyExists):
                self.client.create({"apiVersion": "v1", "kind": "ConfigMap",
                                    "metadata": {"name": ROOT_CA_CONFIGMAP, "namespace": ns,
                                                 "annotations": {
                                                     DESCRIPTION_ANNOTATION: DESCRIPTION}},
                                    "data": data})
            return
        md = cur["metadata"]
        annotations = md.get("annotations") or {}
        if cur.get("data") == data and not cur.get("binaryData") and \
                annotations.get(DESCRIPTION_ANNOTATION) == DESCRIPTION:
            return
        cur["data"] = data
        cur.pop("binaryData", None)
        md["annotations"] = {**annotations, DESCRIPTION_ANNOTATION: DESCRIPTION}
        self.client.update(cur)


__all__ = ["ServiceAccountController", "ROOT_CA_CONFIGMAP", "DEFAULT_SA"]
