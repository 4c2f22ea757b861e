"""JSON-RPC errors of the simulated API (the mnemonic is what clients key on)."""

from __future__ import annotations

from typing import Any

# mnemonic -> (code, message). Codes are not unique on the real API either.
ERRORS: dict[str, tuple[int, str]] = {
    "parse_error": (-32700, "Parse error"),
    "invalid_request": (-32600, "Invalid Request"),
    "method_not_found": (-32601, "Method not found"),
    "required_parameter_missed": (-32602, "Required parameter has been missed"),
    "unexpected_parameters": (-32602, "Unexpected parameters"),
    "invalid_parameter_value": (-32602, "Invalid parameter value"),
    "data_type_error": (-32602, "Data type error"),
    "filter_prohibited": (-32602, "Filtering by this field is prohibited"),
    "sort_prohibited": (-32602, "Sorting by this field is prohibited"),
    "date_interval_limit_reached": (-32602, "The date interval is too long"),
    "internal_error": (-32603, "Internal error"),
    "access_token_invalid": (-32001, "Access token is invalid"),
    "access_token_expired": (-32001, "Access token has expired"),
    "access_token_blocked": (-32001, "Access token has been blocked"),
    "auth_error": (-32004, "Wrong login or password"),
    "forbidden": (-32003, "Permission denied"),
    "ip_not_whitelisted": (-32003, "Your IP is not whitelisted"),
    "method_component_disabled": (-32008, "The component of the method is disabled"),
    "account_inactive": (-32009, "Your account has been disabled, contact the support service"),
    "limit_exceeded": (-32029, "Limit has been exceeded"),
}


class ApiError(Exception):
    """An error answer; ``extra`` keys are merged into ``error.data``."""

    def __init__(self, mnemonic: str, field: str | None = None, value: Any = None,
                 params: dict[str, Any] | None = None, extra: dict[str, Any] | None = None,
                 message: str | None = None) -> None:
        code, default_message = ERRORS[mnemonic]
        self.mnemonic = mnemonic
        self.code = code
        self.message = message or default_message
        self.field = field
        self.value = value
        self.params = params or {}
        self.extra = extra or {}
        super().__init__(f"{mnemonic}: {self.message} ({field})")

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"mnemonic": self.mnemonic, "field": self.field, "value": self.value,
                                "params": self.params}
        data.update(self.extra)
        return {"code": self.code, "message": self.message, "data": data}
