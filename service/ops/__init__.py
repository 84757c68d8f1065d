"""Rekognition operations as plain functions of (Services, validated request) -> response."""
