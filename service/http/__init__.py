"""The HTTP surfaces: Rekognition's wire protocol, the REST API, its OpenAPI schemas, and the
plumbing both share (headers, bodies, authentication)."""
