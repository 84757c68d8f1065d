"""Clients of facebank's API (bulk import, a local server for tests and benchmarks), apart from the
server: nothing here imports the server's modules, and the server never imports this."""
