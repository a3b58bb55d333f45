"""Storage: SQLAlchemy models, engine set-up, migrations and the queries the pipeline needs."""
