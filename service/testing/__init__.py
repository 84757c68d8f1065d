"""Harnesses for tests and benchmarks (live servers, moto): never shipped, never imported by
the server."""
