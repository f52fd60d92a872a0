"""Persistence: SQLAlchemy models, the async engine, and small repository functions."""
