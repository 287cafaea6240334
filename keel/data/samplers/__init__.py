"""Batch samplers: how instances are grouped into batches (``bucket``)."""

from keel.data.samplers.batch_sampler import BatchSampler
from keel.data.samplers.bucket_batch_sampler import BucketBatchSampler

__all__ = ["BatchSampler", "BucketBatchSampler"]
