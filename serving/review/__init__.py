"""Moderator review: the console page (static/), decisions and appeals (routes), and the store (SQLAlchemy +
Alembic migrations shipped in migrations/)."""
