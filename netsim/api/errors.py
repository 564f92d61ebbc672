"""API errors carrying Kubernetes' status codes, reasons and wording."""

from __future__ import annotations

import re


class ApiError(Exception):
    """A failed API call: HTTP-like code, Kubernetes reason, human message."""

    code = 500
    reason = "InternalError"

    def __init__(self, message: str, *, code: int | None = None, reason: str | None = None,
                 details: dict | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}
        if code is not None:
            self.code = code
        if reason is not None:
            self.reason = reason

    def status(self) -> dict:
        """The `Status` object the HTTP API returns for this error."""
        out = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": self.message, "reason": self.reason, "code": self.code}
        if not self.reason:  # StatusReasonUnknown is "" (omitempty): a plain error's 500
            del out["reason"]
        if self.details:
            out["details"] = self.details
        return out

    @staticmethod
    def from_status(status: dict) -> ApiError:
        cls = {404: NotFound, 409: Conflict, 422: Invalid, 410: Gone, 400: BadRequest}.get(
            status.get("code", 500), ApiError)
        if cls is Conflict and status.get("reason") == "AlreadyExists":
            cls = AlreadyExists
        return cls(status.get("message", ""), code=status.get("code"), reason=status.get("reason"),
                   details=status.get("details"))


class BadRequest(ApiError):
    code, reason = 400, "BadRequest"


class NotFound(ApiError):
    code, reason = 404, "NotFound"


class Conflict(ApiError):
    code, reason = 409, "Conflict"


class AlreadyExists(Conflict):
    code, reason = 409, "AlreadyExists"


class Gone(ApiError):
    code, reason = 410, "Expired"


class Invalid(ApiError):
    code, reason = 422, "Invalid"


def not_found(resource: str, name: str, group: str = "") -> NotFound:
    qual = f"{resource}.{group}" if group else resource
    return NotFound(f'{qual} "{name}" not found')


def already_exists(resource: str, name: str, group: str = "") -> AlreadyExists:
    qual = f"{resource}.{group}" if group else resource
    return AlreadyExists(f'{qual} "{name}" already exists')


# field.ErrorType's words -> the StatusCause type the apiserver sends with each
_CAUSE_TYPES = {"Required value": "FieldValueRequired", "Invalid value": "FieldValueInvalid",
                "Unsupported value": "FieldValueNotSupported", "Forbidden": "FieldValueForbidden",
                "Duplicate value": "FieldValueDuplicate", "Too long": "FieldValueTooLong",
                "Too many": "FieldValueTooMany", "Not found": "FieldValueNotFound",
                "Internal error": "InternalError"}
_CAUSE = re.compile(r"(.*?): (" + "|".join(map(re.escape, _CAUSE_TYPES)) + r")(.*)", re.S)


def method_not_allowed() -> ApiError:
    """405: a verb the path does not serve (a create-only subresource, a GET-only path)."""
    return ApiError("the server does not allow this method on the requested resource",
                    code=405, reason="MethodNotAllowed")


def unregistered_kind(kind: str, api_version: str, want: str) -> BadRequest:
    """400: a body of another kind than the subresource takes (the decoder's words)."""
    return BadRequest(f'{kind} in version "{str(api_version).rsplit("/", 1)[-1]}" cannot be '
                      f'handled as a {want}: no kind "{kind}" is registered for version '
                      f'"{api_version}" in scheme "pkg/api/legacyscheme/scheme.go:30"')


def status_cause(cause: str) -> dict:
    """A `field: Type: detail` cause as the apiserver's StatusCause ({reason, message: the
    ErrorBody, field}): kubectl prints `* <field>: <message>` for each."""
    m = _CAUSE.fullmatch(cause)
    if not m:
        return {"message": cause}
    return {"reason": _CAUSE_TYPES[m.group(2)], "message": m.group(2) + m.group(3),
            "field": m.group(1)}


def invalid(kind: str, name: str, causes: list[str]) -> Invalid:
    """`The Service "x" is invalid: spec.ports[0].port: Required value` (kubectl's format)."""
    if len(causes) == 1:
        detail = causes[0]
    else:
        detail = "[" + ", ".join(causes) + "]"
    return Invalid(f'The {kind} "{name}" is invalid: {detail}',
                   details={"kind": kind, "name": name,
                            "causes": [status_cause(c) for c in causes]})
