"""API errors carrying Kubernetes' status codes, reasons and wording."""

from __future__ import annotations


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


def invalid(kind: str, name: str, causes: list[str]) -> Invalid:
    """`The Service "x" is invalid: spec.ports[0].port: Required value` (kubectl's format)."""
    if len(causes) == 1:
        detail = causes[0]
    else:
        detail = "[" + ", ".join(causes) + "]"
    return Invalid(f'The {kind} "{name}" is invalid: {detail}',
                   details={"kind": kind, "name": name,
                            "causes": [{"message": c} for c in causes]})
