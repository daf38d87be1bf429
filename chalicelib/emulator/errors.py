"""The service's errors as the emulator raises them: the exception name botocore's clients know
(`client.exceptions.ResourceNotFoundException`, ...), a message, and the HTTP status the service
answers with."""

from __future__ import annotations

# Status codes of the service's modeled errors (runtime and events declare them in the model; the
# control plane answers every error with 400).
STATUS = {"ResourceNotFoundException": 404, "ResourceInUseException": 409}


class ServiceError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message

    def status(self, rest: bool) -> int:
        return STATUS.get(self.code, 400) if rest else 400


def not_found(arn: str) -> ServiceError:
    return ServiceError("ResourceNotFoundException", f"Resource {arn} does not exist.")


def invalid(message: str) -> ServiceError:
    return ServiceError("InvalidInputException", message)


def in_use(message: str) -> ServiceError:
    return ServiceError("ResourceInUseException", message)


def exists(arn: str) -> ServiceError:
    return ServiceError("ResourceAlreadyExistsException", f"Resource {arn} already exists.")


def limit(message: str) -> ServiceError:
    return ServiceError("LimitExceededException", message)
