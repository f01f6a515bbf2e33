"""The control plane: the Panorama API (and the AWS APIs around it), self-hosted.

    protocol/  AWS wire protocols driven by botocore service models; SigV4
    services/  domain logic, one module per resource family; knows nothing of HTTP
    db/        SQLAlchemy models and Alembic migrations (SQLite default, PostgreSQL)
    storage/   object store backends (filesystem default, S3)

The contract between protocol/ and services/ is small and lives here:
`errors.ServiceError` (typed AWS errors) and `context.RequestContext`.
"""
