"""Deterministic Cumulus-like messages for the benchmark.

The shape follows what an ingest workflow passes between tasks: ``cumulus_meta`` and
``meta`` describing the execution, a ``task_config`` of templates, and a payload of
granules with their files. Each granule record is about 850 bytes of compact JSON, so
1, 2000 and 20000 granules give messages of about 2 KB, 1.7 MB and 17 MB. Everything is
derived from the granule index, so every run (and every machine) sends the same bytes.
"""

import hashlib
from typing import Any

FILE_KINDS = (
    ("hdf", "data", "bench-protected"),
    ("hdf.met", "metadata", "bench-private"),
    ("jpg", "browse", "bench-public"),
)


def _granule(index: int) -> dict[str, Any]:
    digest = hashlib.sha256(index.to_bytes(4, "big")).digest()
    day = 1 + index % 365
    tile = f"h{index % 36:02d}v{(index // 36) % 18:02d}"
    granule_id = f"MOD09GQ.A2017{day:03d}.{tile}.006.{2017034065104 + index}"
    files = []
    for position, (suffix, kind, bucket) in enumerate(FILE_KINDS):
        name = f"{granule_id}.{suffix}"
        chunk = digest[position * 8 : (position + 1) * 8]
        files.append(
            {
                "bucket": bucket,
                "key": f"MOD09GQ___006/{name}",
                "fileName": name,
                "size": 1024 + int.from_bytes(chunk, "big") % 40_000_000,
                "checksum": hashlib.md5(chunk).hexdigest(),
                "type": kind,
            }
        )
    return {
        "granuleId": granule_id,
        "dataType": "MOD09GQ",
        "version": "006",
        "createdAt": 1700000000000 + index * 1000,
        "sync_granule_duration": 1000 + digest[30] * 7,
        "files": files,
    }


def make_message(granules: int) -> dict[str, Any]:
    """A Cumulus message whose payload carries ``granules`` granule records."""
    return {
        "cumulus_meta": {
            "state_machine": "arn:aws:states:us-east-1:123456789012:stateMachine:"
            "bench-IngestGranuleStateMachine",
            "execution_name": f"bench-{granules:05d}-0c2e4f",
            "system_bucket": "bench-internal",
            "message_source": "sfn",
            "workflow_start_time": 1700000000000,
        },
        "meta": {
            "collection": {
                "name": "MOD09GQ",
                "version": "006",
                "dataType": "MOD09GQ",
                "process": "modis",
                "granuleIdExtraction": "(MOD09GQ\\..*)(\\.hdf|\\.cmr|_ndvi\\.jpg)",
                "url_path": "{cmrMetadata.Granule.Collection.ShortName}___"
                "{cmrMetadata.Granule.Collection.VersionId}",
            },
            "provider": {
                "id": "bench-provider",
                "protocol": "s3",
                "host": "bench-provider-bucket",
                "globalConnectionLimit": 10,
            },
            "stack": "bench-stack",
            "buckets": {
                "internal": {"name": "bench-internal", "type": "internal"},
                "protected": {"name": "bench-protected", "type": "protected"},
                "public": {"name": "bench-public", "type": "public"},
            },
            "workflow_tasks": {},
        },
        "task_config": {
            "collection": "{$.meta.collection.name}",
            "provider": "{$.meta.provider}",
            "buckets": "{$.meta.buckets}",
            "stack": "{$.meta.stack}",
            "downloadBucket": "{$.cumulus_meta.system_bucket}",
            "fileStagingDir": "staging/{$.meta.collection.name}___{$.meta.collection.version}",
            "duplicateHandling": "replace",
            "cumulus_message": {"input": "{$.payload}"},
        },
        "payload": {"granules": [_granule(index) for index in range(granules)]},
        "exception": "None",
    }


LAMBDA_CONTEXT: dict[str, Any] = {
    "function_name": "bench-SyncGranule",
    "function_version": "$LATEST",
    "invoked_function_arn": "arn:aws:lambda:us-east-1:123456789012:function:bench-SyncGranule",
    "memory_limit_in_mb": "1024",
    "aws_request_id": "6f3b1d2e-8c1f-4d0a-9a57-2b6f0f1e9c11",
}
