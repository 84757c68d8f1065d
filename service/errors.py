"""Domain errors named as Rekognition names them; each HTTP surface renders them in one place."""

from __future__ import annotations

from typing import ClassVar


class ServiceError(Exception):
    """An error the client caused or must handle, carrying Rekognition's error name.

    `wire_status` is what AWS answers on the JSON 1.1 protocol (nearly always 400);
    `rest_status` is the more specific status the REST surface uses.
    """

    code: ClassVar[str] = "InternalServerError"
    wire_status: ClassVar[int] = 400
    rest_status: ClassVar[int] = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidParameterError(ServiceError):
    code = "InvalidParameterException"


class ImageTooLargeError(ServiceError):
    code = "ImageTooLargeException"
    rest_status = 413


class InvalidImageFormatError(ServiceError):
    code = "InvalidImageFormatException"
    rest_status = 415


class InvalidS3ObjectError(ServiceError):
    code = "InvalidS3ObjectException"


class VideoTooLargeError(ServiceError):
    code = "VideoTooLargeException"
    rest_status = 413


class LimitExceededError(ServiceError):
    """Past a quota on work in progress (concurrent video jobs)."""

    code = "LimitExceededException"
    rest_status = 429


class AccessDeniedError(ServiceError):
    """A valid key whose policy does not allow the action on the resource."""

    code = "AccessDeniedException"
    rest_status = 403


class ProvisionedThroughputExceededError(ServiceError):
    """Past the calling key's own rate (botocore retries it)."""

    code = "ProvisionedThroughputExceededException"
    rest_status = 429


class ThrottlingError(ServiceError):
    code = "ThrottlingException"
    rest_status = 429


class ResourceNotFoundError(ServiceError):
    code = "ResourceNotFoundException"
    rest_status = 404


class InternalServerError(ServiceError):
    code = "InternalServerError"
    wire_status = 500
    rest_status = 500


class ServiceUnavailableError(ServiceError):
    """The server cannot take the request now (storage full); a retry later can succeed.
    botocore retries a 503 by itself."""

    code = "ServiceUnavailableException"
    wire_status = 503
    rest_status = 503


# Protocol-level errors that AWS answers before an operation runs.
class UnknownOperationError(ServiceError):
    code = "UnknownOperationException"
    rest_status = 404


class SerializationError(ServiceError):
    code = "SerializationException"


class MissingAuthenticationTokenError(ServiceError):
    code = "MissingAuthenticationTokenException"
    wire_status = 403
    rest_status = 401


class UnrecognizedClientError(ServiceError):
    code = "UnrecognizedClientException"
    rest_status = 401


class InvalidSignatureError(ServiceError):
    code = "InvalidSignatureException"
    wire_status = 403
    rest_status = 401


class IncompleteSignatureError(ServiceError):
    code = "IncompleteSignatureException"
    rest_status = 401


class ResourceAlreadyExistsError(ServiceError):
    code = "ResourceAlreadyExistsException"
    rest_status = 409


class ServiceQuotaExceededError(ServiceError):
    code = "ServiceQuotaExceededException"
    rest_status = 409


class ConflictError(ServiceError):
    code = "ConflictException"
    rest_status = 409


class IdempotentParameterMismatchError(ServiceError):
    code = "IdempotentParameterMismatchException"
    rest_status = 409


class InvalidPaginationTokenError(ServiceError):
    code = "InvalidPaginationTokenException"


class ResourceInUseError(ServiceError):
    code = "ResourceInUseException"
    rest_status = 409
