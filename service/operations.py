"""The one entry point both HTTP surfaces call: validate against the service model, then run."""

from __future__ import annotations

from collections.abc import Callable

from service import errors
from service.ops import analysis, collections, faces, search, user_search, users
from service.ops.context import Request, Response, Services
from service.validation import validate_request

Handler = Callable[[Services, Request], Response]

HANDLERS: dict[str, Handler] = {
    "DetectFaces": analysis.detect_faces,
    "CompareFaces": analysis.compare_faces,
    "CreateCollection": collections.create_collection,
    "DescribeCollection": collections.describe_collection,
    "ListCollections": collections.list_collections,
    "DeleteCollection": collections.delete_collection,
    "IndexFaces": faces.index_faces,
    "ListFaces": faces.list_faces,
    "DeleteFaces": faces.delete_faces,
    "SearchFaces": search.search_faces,
    "SearchFacesByImage": search.search_faces_by_image,
    "CreateUser": users.create_user,
    "DeleteUser": users.delete_user,
    "ListUsers": users.list_users,
    "AssociateFaces": users.associate_faces,
    "DisassociateFaces": users.disassociate_faces,
    "SearchUsers": user_search.search_users,
    "SearchUsersByImage": user_search.search_users_by_image,
}


class Operations:
    def __init__(self, services: Services) -> None:
        self.services = services

    def dispatch(self, operation: str, body: object) -> Response:
        handler = HANDLERS.get(operation)
        if handler is None:
            raise errors.UnknownOperationError(f"Operation {operation} is not supported")
        return handler(self.services, validate_request(operation, body))
