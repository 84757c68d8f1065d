"""Rekognition operations as plain functions of (context, validated parameters) -> result, each
typed by the parts of OperationContext it uses (service/context.py).

`dispatch` holds the table both HTTP surfaces call through; each other module is one family of
operations (detect and compare, collections, faces, search, users, user search, tags, stored
video) or what they share
(validation against botocore's model, admission, QualityFilter, response rendering).
"""

from typing import Any

Params = dict[str, Any]  # an operation's request, validated against the service model
Result = dict[str, Any]  # an operation's response, ready to be sent as JSON
