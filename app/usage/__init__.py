"""Accounting: each request's record, client keys' limits, the usage store sink, and the usage CLI."""
