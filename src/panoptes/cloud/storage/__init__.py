"""Object store backends behind one small interface (filesystem default, S3)."""

from panoptes.cloud.storage.base import ObjectInfo, ObjectStore

__all__ = ["ObjectInfo", "ObjectStore"]
