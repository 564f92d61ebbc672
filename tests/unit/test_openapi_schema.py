"""The compact OpenAPI schema (netsim.api.openapi.schema): every kind netsim serves resolves,
and the merge keys and list types are upstream's (what strategic merge and apply rely on)."""

from __future__ import annotations

import gzip
import json

import pytest

from netsim.api.openapi import generate, schema
from netsim.api.resources import ACCEPTED_VERSIONS, RESOURCES


@pytest.mark.parametrize("res", RESOURCES, ids=lambda r: r.kind)
def test_every_served_kind_resolves(res):
    node = schema.resolve(res.api_version, res.kind)
    assert node is not None
    assert {"apiVersion", "kind", "metadata"} <= set(node.fields)
    md = schema.child(node, "metadata")
    assert md.name == "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


def test_only_the_exact_version_resolves():
    """An old version netsim converts has other fields (v1beta1's serviceName): no schema."""
    for api in ACCEPTED_VERSIONS["Ingress"] - {"networking.k8s.io/v1"}:
        assert schema.resolve(api, "Ingress") is None
    assert schema.resolve("networking.k8s.io/v1", "Ingress").name == \
        "io.k8s.api.networking.v1.Ingress"
    assert schema.resolve("v1", "NoSuchKind") is None
    assert schema.resolve("apps/v2", "Deployment") is None


def _pod_spec(api="apps/v1", kind="Deployment"):
    spec = schema.child(schema.resolve(api, kind), "spec")
    return schema.child(schema.child(spec, "template"), "spec")


def test_containers_merge_by_name_and_their_lists_by_upstreams_keys():
    containers = schema.child(_pod_spec(), "containers")
    assert schema.is_list(containers) and not schema.is_map(containers)
    assert schema.list_info(containers) == schema.ListInfo("map", ("name",), "merge", "name")
    c = schema.items(containers)
    assert c.name == "io.k8s.api.core.v1.Container"
    ports = schema.list_info(schema.child(c, "ports"))
    assert (ports.patch_merge_key, ports.map_keys) == ("containerPort", ("containerPort", "protocol"))
    assert schema.list_info(schema.child(c, "volumeMounts")).patch_merge_key == "mountPath"
    assert schema.list_info(schema.child(c, "env")).patch_merge_key == "name"
    assert schema.list_info(schema.child(c, "args")).list_type == "atomic"
    vols = schema.list_info(schema.child(_pod_spec(), "volumes"))
    assert vols.patch_strategy == "merge,retainKeys" and vols.patch_merge_key == "name"


def test_a_ref_field_with_its_own_extensions_keeps_both():
    spec = schema.child(schema.resolve("apps/v1", "Deployment"), "spec")
    strategy = schema.child(spec, "strategy")
    assert schema.list_info(strategy).patch_strategy == "retainKeys"
    assert "rollingUpdate" in strategy.fields
    assert strategy.name == "io.k8s.api.apps.v1.DeploymentStrategy"


def test_maps_scalars_and_free_form_objects():
    md = schema.child(schema.resolve("v1", "Pod"), "metadata")
    labels = schema.child(md, "labels")
    assert schema.is_map(labels) and schema.items(labels).type == "string"
    assert schema.child(labels, "anything") is None
    owner = schema.child(md, "ownerReferences")
    assert schema.list_info(owner).patch_merge_key == "uid"
    port = schema.child(schema.items(schema.child(schema.child(
        schema.resolve("v1", "Service"), "spec"), "ports")), "targetPort")
    assert port.int_or_string
    data = schema.child(schema.resolve("apps/v1", "ControllerRevision"), "data")
    assert data.accepts_any
    selector = schema.child(schema.child(schema.resolve("apps/v1", "Deployment"), "spec"),
                            "selector")
    assert selector.map_type == "atomic"


def test_the_committed_data_is_what_the_generator_writes(tmp_path):
    """The data file's shape: kinds -> schema names, every $ref present."""
    with gzip.open(generate.OUT, "rt") as f:
        data = json.load(f)
    assert data["kubernetes"] == schema.kubernetes_release()
    names = set(data["schemas"])
    for m in data["kinds"].values():
        assert set(m.values()) <= names
    for s in data["schemas"].values():
        assert set(generate._refs(s)) <= names
