"""``mlflow.protos.databricks_pb2``: MLflow's error codes as ints, and ``ErrorCode.Name``
/ ``ErrorCode.Value`` to go between an int and the name ``MlflowException.error_code`` has."""

from __future__ import annotations

from xp.errors import MLFLOW_ERROR_CODES


class ErrorCode:
    @staticmethod
    def Name(number: int) -> str:
        for name, value in MLFLOW_ERROR_CODES.items():
            if value == number:
                return name
        raise ValueError(f"unknown error code {number}")

    @staticmethod
    def Value(name: str) -> int:
        return MLFLOW_ERROR_CODES[name]


OK = 0
INTERNAL_ERROR = 1
TEMPORARILY_UNAVAILABLE = 2
IO_ERROR = 3
BAD_REQUEST = 4
INVALID_PARAMETER_VALUE = 1000
ENDPOINT_NOT_FOUND = 1001
MALFORMED_REQUEST = 1002
INVALID_STATE = 1003
PERMISSION_DENIED = 1004
FEATURE_DISABLED = 1005
CUSTOMER_UNAUTHORIZED = 1006
REQUEST_LIMIT_EXCEEDED = 1007
NOT_IMPLEMENTED = 1010
RESOURCE_ALREADY_EXISTS = 3001
RESOURCE_DOES_NOT_EXIST = 3002
