"""What every namespace holds for its pods' API access, as kube-controller-manager keeps it:

- the `default` ServiceAccount (upstream's serviceaccount-controller): created in every
  active namespace, and again when someone deletes it;
- the `kube-root-ca.crt` ConfigMap (upstream's root-ca-cert-publisher): the cluster CA under
  `ca.crt`, which the kubelet projects into pods next to their token so clients verify
  https://kubernetes.default.svc; put back as it was when edited or deleted;
- long-lived tokens (upstream's tokens controller): a Secret of type
  `kubernetes.io/service-account-token` annotated `kubernetes.io/service-account.name`
  gets `token` (a legacy, non-expiring JWT), `ca.crt` and `namespace`, and the account's
  uid annotation, once that ServiceAccount exists.

One key per namespace; a terminating namespace is left alone. `root_ca` is the PEM the
control plane hands over (None: no ConfigMap is published).
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterable

from netsim.api import errors, satoken
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
    watches = ("namespaces", "serviceaccounts", "configmaps", "secrets")

    def __init__(self, client, root_ca: str | None = None,
                 informers: InformerFactory | None = None):
        super().__init__(client, informers)
        self.root_ca = root_ca

    def keys_for(self, resource: str, obj: dict) -> Iterable[str]:
        md = obj.get("metadata") or {}
        if resource == "namespaces":
            return [md.get("name", "")]
        ns = md.get("namespace") or "default"
        if resource == "serviceaccounts":  # the default one, or one a token Secret waits for
            return [ns]
        if resource == "secrets":
            return [ns] if obj.get("type") == satoken.SECRET_TYPE else []
        return [ns] if md.get("name") == ROOT_CA_CONFIGMAP else []

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
        for secret in self.lister("secrets").list(key):
            if secret.get("type") == satoken.SECRET_TYPE:
                self._fill_token(clone(secret))
        return None

    def _fill_token(self, secret: dict) -> None:
        """The tokens controller's share of one token Secret (nothing while its account is
        missing or no signing key is configured)."""
        md = secret["metadata"]
        if md.get("deletionTimestamp"):
            return
        anns = md.get("annotations") or {}
        sa = self.lister("serviceaccounts").get_by_name(
            anns.get(satoken.SA_NAME_ANNOTATION, ""), md.get("namespace"))
        iss = satoken.issuer()
        if sa is None or iss is None or iss.private_key is None:
            return
        data = dict(secret.get("data") or {})
        uid = sa["metadata"].get("uid", "")
        claims = satoken.legacy_claims(sa, md["name"])
        try:
            held = iss.decode_legacy(base64.b64decode(data.get("token", "")).decode())
        except Exception:  # noqa: BLE001 - missing, garbled or foreign: made anew
            held = None
        want = dict(data)
        if held != claims:
            want["token"] = _b64(iss.sign(claims))
        want["namespace"] = _b64(md["namespace"])
        if self.root_ca is not None:
            want["ca.crt"] = _b64(self.root_ca)
        if want == data and anns.get(satoken.SA_UID_ANNOTATION) == uid:
            return
        secret["data"] = want
        md["annotations"] = {**anns, satoken.SA_UID_ANNOTATION: uid}
        self.client.update(secret)

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


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


__all__ = ["ServiceAccountController", "ROOT_CA_CONFIGMAP", "DEFAULT_SA"]
