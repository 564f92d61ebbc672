"""Ingress object model: conversion of old API versions to networking.k8s.io/v1 and the
apiserver's validation, for the ingress controller and renderer.

The code is the API's (netsim.api.kinds.networking): admission and the controller apply
one implementation, and the api room imports nothing from this one.
"""

from __future__ import annotations

from netsim.api.kinds.networking import (
    DEPRECATED_VERSIONS,
    PATH_TYPES,
    V1,
    dns1123_subdomain_errors,
    ingress_field_errors,
    invalid_message,
    normalize_ingress,
    validate_ingress,
    wildcard_subdomain_errors,
)

__all__ = ["DEPRECATED_VERSIONS", "PATH_TYPES", "V1", "dns1123_subdomain_errors",
           "ingress_field_errors", "invalid_message", "normalize_ingress", "validate_ingress",
           "wildcard_subdomain_errors"]
