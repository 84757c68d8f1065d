"""Helpers the tests share: provisioned photos, live server processes, clients, PostgreSQL."""
