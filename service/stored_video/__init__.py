"""Stored video: durable jobs, their analysis, and their completion messages."""
