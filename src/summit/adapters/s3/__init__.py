"""Adapters that speak the S3 API (any S3 store: SeaweedFS at stage 10k, MinIO, AWS): the objects port (``s3://``)."""
