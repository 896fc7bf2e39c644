"""Alembic environment for the review store. Run by ``serving.review.store.migrate`` with a live connection in
``config.attributes["connection"]``; from the command line, ``alembic -x url=URL upgrade head`` with
``script_location`` pointing here."""

from alembic import context
from sqlalchemy import create_engine

from serving.review.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    with create_engine(url).begin() as conn:
        context.configure(connection=conn, target_metadata=Base.metadata, render_as_batch=True)
        context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
