"""Object store: presigned URLs, streaming reads and writes, multipart uploads, prefix deletes.

One `Storage` is opened in the API/worker lifespan (`async with Storage(settings) as storage`) and
holds a single aiobotocore client for its lifetime. Keys are full object keys (callers build them
with `Settings.object_prefix`); the bucket is `Settings.s3_bucket`.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import math
import os
import random
import ssl
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, urlsplit
from urllib.request import getproxies_environment, proxy_bypass

import aioboto3
import aiohttp
import botocore.session
import yarl
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError, HTTPClientError, IncompleteReadError
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.httpsession import get_cert_path

from service.config import Settings

# S3 rules for multipart uploads: every part but the last is at least 5 MiB, at most 10,000 parts.
MIN_PART_BYTES = 5 * 1024**2
MAX_PART_BYTES = 5 * 1024**3
MAX_PARTS = 10_000
# Enough pooled connections for a few hundred concurrent streamed uploads per process.
MAX_POOL_CONNECTIONS = 256
DELETE_BATCH = 1000  # DeleteObjects takes at most 1,000 keys
COPY_PART_BYTES = 1024**3  # a server-side copy above CopyObject's 5 GiB goes in parts of this size
# A streamed upload holds at most this much of its current part in memory; the rest of the part waits
# in a temporary file, which is read back at most READ_BYTES at a time (aiohttp would read 256 KiB,
# botocore's payload hash 1 MiB). With uvicorn's own per-connection buffers, 200 concurrent uploads
# then stay within PRODUCT.md's 300 MB of API RSS.
SPILL_BYTES = 64 * 1024
READ_BYTES = 64 * 1024
PING_TIMEOUT_S = 2.0
# A local file up to this size is read or written on the event loop (well under a millisecond): a thread hop per
# open, read, write and close cost more CPU than the I/O itself for a run's small inputs and reports.
INLINE_FILE_BYTES = 256 * 1024

_NOT_FOUND_CODES = {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}


class StorageError(Exception):
    """Base class of the object store's errors."""


class ObjectTooLarge(StorageError):
    """A streamed or fetched body exceeded the allowed number of bytes."""

    def __init__(self, key: str, max_bytes: int) -> None:
        super().__init__(f"object {key!r} exceeds {max_bytes} bytes")
        self.key = key
        self.max_bytes = max_bytes


class ObjectNotFound(StorageError):
    """The object does not exist."""

    def __init__(self, key: str) -> None:
        super().__init__(f"object {key!r} not found")
        self.key = key


class InvalidUpload(StorageError):
    """A multipart upload cannot be completed from the parts given."""


class ObjectChanged(StorageError):
    """The object is no longer the one expected (its ETag differs: it was written again)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"object {key!r} changed")
        self.key = key


class StorageUnavailable(StorageError):
    """The object store is unreachable or answered 5xx after botocore's retries."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    content_type: str | None
    etag: str | None


@dataclass(frozen=True)
class PresignedMultipart:
    key: str
    upload_id: str
    part_size: int
    part_urls: list[str]
    expires_at: datetime


@dataclass(frozen=True)
class PresignedUpload:
    key: str
    method: str  # PUT, or POST (a form upload: `fields` first, the file last)
    url: str
    headers: dict[str, str]  # headers the client must send with exactly this value
    expires_at: datetime
    fields: dict[str, str] | None = None


def botocore_config() -> Config:
    return Config(
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        # B2 and MinIO reject the CRC checksums botocore >= 1.36 adds by default.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        # Few attempts: callers answer 503 quickly when the store is down; backoff stays under ~3 s.
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=5,
        read_timeout=60,
        max_pool_connections=MAX_POOL_CONNECTIONS,
        tcp_keepalive=True,
        # The requests are ours, built from checked values: validating every call's parameters against the
        # service model cost ~10 % of a small object's CPU.
        parameter_validation=False,
    )


def part_size_for(total_bytes: int, preferred_part_bytes: int) -> int:
    """The part size to use for an object of at most `total_bytes`: at least 5 MiB, at most 10,000 parts."""
    return max(preferred_part_bytes, MIN_PART_BYTES, math.ceil(total_bytes / MAX_PARTS))


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback name and the exact UTF-8 name (RFC 6266 / RFC 5987)."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename) or "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _http_status(error: ClientError) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def _is_not_found(error: ClientError) -> bool:
    return _error_code(error) in _NOT_FOUND_CODES or _http_status(error) == 404


@contextmanager
def _unavailable_on_transport_errors() -> Iterator[None]:
    """Turn connection failures and 5xx answers (after botocore's retries) into StorageUnavailable."""
    try:
        yield
    except (BotoConnectionError, HTTPClientError, IncompleteReadError) as exc:
        raise StorageUnavailable(f"object store unreachable: {exc}") from exc
    except ClientError as exc:
        if _http_status(exc) >= 500:
            raise StorageUnavailable(f"object store error: {exc}") from exc
        raise


class _MultipartUpload:
    """One in-progress multipart upload; parts are sent one at a time, in order."""

    def __init__(self, client: Any, bucket: str, key: str, upload_id: str) -> None:
        self._client = client
        self._bucket = bucket
        self.key = key
        self.upload_id = upload_id
        self._parts: list[dict[str, Any]] = []

    async def upload_part(self, body: bytes | io.IOBase) -> None:
        """Send the next part: bytes, or a file positioned at the part's start that ends with it."""
        number = len(self._parts) + 1
        # A BytesIO over the bytes (no copy) is sent by aiohttp in small pieces; raw bytes would be
        # copied whole into the socket transport's buffer.
        response = await self._client.upload_part(
            Bucket=self._bucket,
            Key=self.key,
            UploadId=self.upload_id,
            PartNumber=number,
            Body=io.BytesIO(body) if isinstance(body, bytes) else body,
        )
        self._parts.append({"PartNumber": number, "ETag": response["ETag"]})

    async def copy_parts(self, source: dict[str, str], size: int) -> None:
        """Fill the upload with a server-side copy of `source` (`size` bytes), in ranges of COPY_PART_BYTES."""
        for start in range(0, size, COPY_PART_BYTES):
            number = len(self._parts) + 1
            response = await self._client.upload_part_copy(
                Bucket=self._bucket,
                Key=self.key,
                UploadId=self.upload_id,
                PartNumber=number,
                CopySource=source,
                CopySourceRange=f"bytes={start}-{min(start + COPY_PART_BYTES, size) - 1}",
            )
            self._parts.append({"PartNumber": number, "ETag": response["CopyPartResult"]["ETag"]})

    async def complete(self) -> None:
        await self._client.complete_multipart_upload(
            Bucket=self._bucket,
            Key=self.key,
            UploadId=self.upload_id,
            MultipartUpload={"Parts": self._parts},
        )

    async def abort(self) -> None:
        await self._client.abort_multipart_upload(Bucket=self._bucket, Key=self.key, UploadId=self.upload_id)


class Storage:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._bucket = settings.s3_bucket
        self._session = aioboto3.Session(
            aws_access_key_id=settings.s3_access_key_id,
            aws_secret_access_key=settings.s3_secret_access_key,
            region_name=settings.s3_region,
        )
        self._exit_stack: AsyncExitStack | None = None
        self._client: Any = None
        self._signer: Any = None
        self._requests: _SignedRequests | None = None

    @property
    def bucket(self) -> str:
        return self._bucket

    @property
    def client(self) -> Any:
        """The aiobotocore S3 client (for operations this class does not wrap)."""
        if self._client is None:
            raise RuntimeError("Storage is not open: use `async with Storage(settings) as storage`")
        return self._client

    async def __aenter__(self) -> Storage:
        async with AsyncExitStack() as stack:
            config = botocore_config()
            self._client = await stack.enter_async_context(
                self._session.client("s3", endpoint_url=self._settings.s3_endpoint_url, config=config)
            )
            self._signer = await asyncio.to_thread(self._create_signer)
            self._requests = _SignedRequests(self._settings, self._client.meta.endpoint_url, self._bucket)
            stack.push_async_callback(self._requests.close)
            self._exit_stack = stack.pop_all()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        stack, self._exit_stack = self._exit_stack, None
        signer, self._client, self._signer, self._requests = self._signer, None, None, None
        if signer is not None:
            signer.close()
        if stack is not None:
            await stack.aclose()

    def _create_signer(self) -> Any:
        """A plain botocore client that only presigns (pure computation, no request is ever sent): for the
        endpoint clients reach, and callable from a thread when one call signs many part URLs."""
        settings = self._settings
        return botocore.session.Session().create_client(
            "s3",
            endpoint_url=settings.s3_public_endpoint_url or settings.s3_endpoint_url,
            region_name=settings.s3_region,
            aws_access_key_id=settings.s3_access_key_id,
            aws_secret_access_key=settings.s3_secret_access_key,
            config=botocore_config(),
        )

    # --- bucket -------------------------------------------------------------------------------

    async def ensure_bucket(self, cors_origins: list[str] | None = None) -> None:
        """Create the bucket if missing, with the CORS rule the page needs: from its origins (`cors_origins`,
        else the origin of `public_url`, else any), a PUT of an input or of a part with its Content-Type, and the
        part's ETag readable (to complete a multipart upload); and a GET with a Range header, so that the page reads a
        bounded part of an output through its download link (the quarantined rows of quarantine.csv, a page at a
        time) instead of the whole file."""
        origins = cors_origins or self._settings.browser_origins() or ["*"]
        with _unavailable_on_transport_errors():
            try:
                await self.client.head_bucket(Bucket=self._bucket)
            except ClientError as exc:
                if not _is_not_found(exc):
                    raise
                await self._create_bucket()
            await self.client.put_bucket_cors(
                Bucket=self._bucket,
                CORSConfiguration={
                    "CORSRules": [
                        {
                            "AllowedOrigins": origins,
                            "AllowedMethods": ["PUT"],
                            "AllowedHeaders": ["Content-Type"],
                            "ExposeHeaders": ["ETag"],
                            "MaxAgeSeconds": 3600,
                        },
                        {
                            "AllowedOrigins": origins,
                            "AllowedMethods": ["GET"],
                            "AllowedHeaders": ["Range"],
                            "ExposeHeaders": ["Content-Range", "Content-Length"],
                            "MaxAgeSeconds": 3600,
                        },
                    ]
                },
            )

    async def _create_bucket(self) -> None:
        params: dict[str, Any] = {"Bucket": self._bucket}
        if self._settings.s3_region != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": self._settings.s3_region}
        try:
            await self.client.create_bucket(**params)
        except ClientError as exc:
            # Another process created it between our HEAD and CREATE.
            if _error_code(exc) not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                raise

    async def ping(self) -> None:
        """Cheap reachability check for /readyz: raises StorageUnavailable when the bucket is not usable."""
        try:
            async with asyncio.timeout(PING_TIMEOUT_S):
                with _unavailable_on_transport_errors():
                    await self.client.head_bucket(Bucket=self._bucket)
        except TimeoutError as exc:
            raise StorageUnavailable(f"object store did not answer within {PING_TIMEOUT_S} s") from exc
        except ClientError as exc:
            raise StorageUnavailable(f"bucket {self._bucket!r} not usable: {exc}") from exc

    # --- presigned URLs -----------------------------------------------------------------------

    async def presign_put(self, key: str, content_type: str, content_length: int, expires_s: int) -> PresignedUpload:
        """A PUT URL that the server accepts only with this Content-Type and exactly this many bytes.

        botocore puts `content-length` and `content-type` into X-Amz-SignedHeaders when the
        parameters are given, so a PUT with another type or size fails the signature check.
        """
        expires_at = datetime.now(UTC) + timedelta(seconds=expires_s)
        params = {"Bucket": self._bucket, "Key": key, "ContentType": content_type, "ContentLength": content_length}
        url = self._signer.generate_presigned_url("put_object", Params=params, ExpiresIn=expires_s, HttpMethod="PUT")
        headers = {"Content-Type": content_type, "Content-Length": str(content_length)}
        return PresignedUpload(key=key, method="PUT", url=url, headers=headers, expires_at=expires_at)

    async def presign_post(self, key: str, content_type: str, max_bytes: int, expires_s: int) -> PresignedUpload:
        """A form upload (presigned POST) for a file of unknown size: its policy lets the store take at most
        `max_bytes` bytes, of this Content-Type, under exactly this key."""
        expires_at = datetime.now(UTC) + timedelta(seconds=expires_s)
        post = self._signer.generate_presigned_post(
            self._bucket,
            key,
            Fields={"Content-Type": content_type},
            Conditions=[{"Content-Type": content_type}, ["content-length-range", 0, max_bytes]],
            ExpiresIn=expires_s,
        )
        fields = {str(k): str(v) for k, v in post["fields"].items()}
        return PresignedUpload(
            key=key, method="POST", url=post["url"], headers={}, expires_at=expires_at, fields=fields
        )

    async def presign_multipart(
        self, key: str, content_type: str, size: int, part_bytes: int, expires_s: int
    ) -> PresignedMultipart:
        """Start a multipart upload of `size` bytes and presign a PUT URL for each part (browsers and the
        CLI send big files part by part, resuming after the parts the store already has).

        Each part URL is signed for its exact length (`part_size`, the last one shorter), so the store takes
        no more than was declared. The signing runs in a thread: ~0.2 ms a URL, a thousand would hold the
        event loop for a fifth of a second.
        """
        expires_at = datetime.now(UTC) + timedelta(seconds=expires_s)
        part_size = part_size_for(size, part_bytes)
        with _unavailable_on_transport_errors():
            created = await self.client.create_multipart_upload(Bucket=self._bucket, Key=key, ContentType=content_type)
        upload_id = created["UploadId"]
        urls = await asyncio.to_thread(self._sign_parts, key, upload_id, size, part_size, expires_s)
        return PresignedMultipart(key, upload_id, part_size, urls, expires_at)

    def _sign_parts(self, key: str, upload_id: str, size: int, part_size: int, expires_s: int) -> list[str]:
        count = max(1, -(-size // part_size))
        return [
            self._signer.generate_presigned_url(
                "upload_part",
                Params={
                    "Bucket": self._bucket,
                    "Key": key,
                    "UploadId": upload_id,
                    "PartNumber": number,
                    "ContentLength": min(part_size, size - (number - 1) * part_size),
                },
                ExpiresIn=expires_s,
                HttpMethod="PUT",
            )
            for number in range(1, count + 1)
        ]

    async def uploaded_parts(self, key: str, upload_id: str) -> list[dict[str, Any]]:
        """The parts of a multipart upload the store has: [{part_number, etag, size}]; ObjectNotFound when
        there is no such upload (completed, aborted or unknown)."""
        parts: list[dict[str, Any]] = []
        marker = 0
        with _unavailable_on_transport_errors():
            while True:
                try:
                    page = await self.client.list_parts(
                        Bucket=self._bucket, Key=key, UploadId=upload_id, PartNumberMarker=marker
                    )
                except ClientError as exc:
                    # A 400 (InvalidRequest): the store does not take the id for one of its uploads either.
                    if _error_code(exc) in {"NoSuchUpload", "NoSuchKey"} or _http_status(exc) in (400, 404):
                        raise ObjectNotFound(key) from exc
                    raise
                parts += [
                    {"part_number": p["PartNumber"], "etag": p["ETag"], "size": p["Size"]}
                    for p in page.get("Parts", [])
                ]
                if not page.get("IsTruncated"):
                    return parts
                marker = int(page["NextPartNumberMarker"])

    async def complete_multipart(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> None:
        """Assemble the upload from its (part number, ETag) list; ObjectNotFound when the upload is gone."""
        with _unavailable_on_transport_errors():
            try:
                await self.client.complete_multipart_upload(
                    Bucket=self._bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etag} for n, etag in sorted(parts)]},
                )
            except ClientError as exc:
                if _error_code(exc) in {"NoSuchUpload", "NoSuchKey"} or _http_status(exc) == 404:
                    raise ObjectNotFound(key) from exc
                if _http_status(exc) == 400:  # a part missing, too small, or with another ETag
                    raise InvalidUpload(f"{_error_code(exc)}: {exc}") from exc
                raise

    async def presign_get(
        self, key: str, filename: str, expires_s: int, content_type: str | None = None
    ) -> tuple[str, datetime]:
        """A GET URL whose response downloads as `filename` (Content-Disposition: attachment)."""
        expires_at = datetime.now(UTC) + timedelta(seconds=expires_s)
        params: dict[str, Any] = {
            "Bucket": self._bucket,
            "Key": key,
            "ResponseContentDisposition": content_disposition(filename),
        }
        if content_type:
            params["ResponseContentType"] = content_type
        url = self._signer.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_s, HttpMethod="GET")
        return url, expires_at

    # --- metadata -----------------------------------------------------------------------------

    async def head(self, key: str) -> ObjectInfo | None:
        """What the store holds at `key` (size, Content-Type, ETag); None when nothing."""
        return await self._signed.head(key)

    @property
    def _signed(self) -> _SignedRequests:
        if self._requests is None:
            raise RuntimeError("Storage is not open: use `async with Storage(settings) as storage`")
        return self._requests

    async def delete_prefix(self, prefix: str, *, batch_size: int = DELETE_BATCH) -> int:
        """Delete every object under `prefix` and abort its unfinished multipart uploads.

        Objects go in DeleteObjects batches of `batch_size` (at most 1,000). Returns how many were deleted.
        """
        if not prefix:
            raise ValueError("refusing to delete the whole bucket: prefix is empty")
        deleted = 0
        with _unavailable_on_transport_errors():
            await self._abort_multipart_uploads(prefix)
            paginator = self.client.get_paginator("list_objects_v2")
            async for page in paginator.paginate(
                Bucket=self._bucket, Prefix=prefix, PaginationConfig={"PageSize": min(batch_size, DELETE_BATCH)}
            ):
                keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
                if not keys:
                    continue
                response = await self.client.delete_objects(
                    Bucket=self._bucket, Delete={"Objects": keys, "Quiet": True}
                )
                errors = response.get("Errors", [])
                if errors:
                    raise StorageError(f"could not delete {len(errors)} objects under {prefix!r}: {errors[:3]}")
                deleted += len(keys)
        return deleted

    async def _abort_multipart_uploads(self, prefix: str) -> None:
        paginator = self.client.get_paginator("list_multipart_uploads")
        async for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
            for upload in page.get("Uploads", []):
                try:
                    await self.client.abort_multipart_upload(
                        Bucket=self._bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                except ClientError as exc:
                    if _error_code(exc) != "NoSuchUpload":
                        raise

    async def abort_stale_multipart_uploads(self, prefix: str, older_than: datetime, *, limit: int = 1000) -> int:
        """Abort up to `limit` unfinished multipart uploads under `prefix` initiated before `older_than`.

        The store keeps (and bills) the parts of an upload nobody completes or aborts: a client that gave
        up on a presigned multipart upload, a process killed mid-stream. Returns how many this call
        aborted. An upload another caller aborted first is skipped, or counted by both callers where the
        store accepts a second abort (SeaweedFS does).
        """
        stale: list[tuple[str, str]] = []
        with _unavailable_on_transport_errors():
            paginator = self.client.get_paginator("list_multipart_uploads")
            # Listed first, aborted after: no abort shifts the listing under the paginator's markers.
            async for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
                stale += [(u["Key"], u["UploadId"]) for u in page.get("Uploads", []) if u["Initiated"] < older_than]
                if len(stale) >= limit:
                    break
            aborted = 0
            for key, upload_id in stale[:limit]:
                try:
                    await self.client.abort_multipart_upload(Bucket=self._bucket, Key=key, UploadId=upload_id)
                except ClientError as exc:
                    if _error_code(exc) != "NoSuchUpload":
                        raise
                    continue
                aborted += 1
        return aborted

    # --- reads --------------------------------------------------------------------------------

    async def download_to_file(
        self, key: str, path: Path, chunk_size: int = 1 << 20, *, if_match: str | None = None
    ) -> int:
        """Stream the object to `path` chunk by chunk; returns the number of bytes written. With `if_match` (an
        ETag) only that version of it: ObjectChanged when it was written again since."""
        return await self._signed.download(key, path, chunk_size, if_match)

    async def get_bytes(self, key: str, max_bytes: int) -> bytes:
        """The whole (small) object; ObjectTooLarge when it is larger than `max_bytes`."""
        with _unavailable_on_transport_errors():
            response = await self._get_object(key)
            body = response["Body"]
            async with body:
                if int(response.get("ContentLength", 0)) > max_bytes:
                    raise ObjectTooLarge(key, max_bytes)
                data = bytearray()
                while chunk := await body.read(1 << 16):
                    data += chunk
                    if len(data) > max_bytes:
                        raise ObjectTooLarge(key, max_bytes)
        return bytes(data)

    async def _get_object(self, key: str, if_match: str | None = None) -> dict[str, Any]:
        condition = {} if if_match is None else {"IfMatch": f'"{if_match}"'}
        try:
            response: dict[str, Any] = await self.client.get_object(Bucket=self._bucket, Key=key, **condition)
        except ClientError as exc:
            if _is_not_found(exc):
                raise ObjectNotFound(key) from exc
            if _http_status(exc) == 412:
                raise ObjectChanged(key) from exc
            raise
        return response

    # --- writes -------------------------------------------------------------------------------

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        """Store a small object in one PUT."""
        await self._signed.put(key, data, content_type)

    async def upload_file(
        self,
        path: Path,
        key: str,
        content_type: str,
        digest: Any | None = None,
        *,
        before_part: Callable[[], Awaitable[None]] | None = None,
    ) -> int:
        """Upload a local file: one PUT if it fits in one part, else multipart, one part in memory at a time.

        Returns the number of bytes uploaded. A hashlib object given as `digest` is fed the bytes
        as they are sent, so callers get a checksum without reading the file a second time. A
        `before_part` coroutine is awaited before each part (or the one PUT) is sent: a background
        upload waits there while more urgent work runs.
        """
        size = path.stat().st_size  # noqa: ASYNC240 - one system call, cheaper than the thread hop
        if size <= INLINE_FILE_BYTES and before_part is None:
            data = path.read_bytes()  # noqa: ASYNC240 - a small file (INLINE_FILE_BYTES)
            if digest is not None:
                digest.update(data)
            await self.put_bytes(key, data, content_type)
            return len(data)
        part_bytes = part_size_for(size, self._settings.multipart_part_bytes)
        file = await asyncio.to_thread(path.open, "rb")
        try:
            if size <= part_bytes:
                if before_part is not None:  # before the bytes are read: a waiting upload holds none
                    await before_part()
                data = await asyncio.to_thread(file.read)
                if digest is not None:
                    digest.update(data)
                await self.put_bytes(key, data, content_type)
                return size
            sent = 0

            async def send_parts(upload: _MultipartUpload) -> None:
                nonlocal sent
                while sent < size:
                    if before_part is not None:
                        await before_part()
                    part = await asyncio.to_thread(file.read, part_bytes)
                    if not part:
                        break
                    if digest is not None:
                        digest.update(part)
                    await upload.upload_part(part)
                    sent += len(part)
                if sent != size:
                    raise StorageError(f"{path} changed size during upload ({size} -> {sent} bytes)")

            await self._multipart(key, content_type, send_parts)
            return sent
        finally:
            await asyncio.to_thread(file.close)

    async def copy(self, source_key: str, key: str, size: int, content_type: str) -> None:
        """A server-side copy of the object `source_key` (of `size` bytes) to `key`: no byte passes through this
        process. One CopyObject up to S3's 5 GiB limit for it (the copy keeps the source's content type), a
        multipart copy of ranges above. ObjectNotFound when the source is gone."""
        source = {"Bucket": self._bucket, "Key": source_key}
        with _unavailable_on_transport_errors():
            try:
                if size <= MAX_PART_BYTES:
                    await self.client.copy_object(Bucket=self._bucket, Key=key, CopySource=source)
                    return
                await self._multipart(key, content_type, lambda upload: upload.copy_parts(source, size))
            except ClientError as exc:
                if _is_not_found(exc):
                    raise ObjectNotFound(source_key) from exc
                raise

    async def upload_stream(
        self, key: str, chunks: AsyncIterator[bytes], content_type: str, max_bytes: int
    ) -> tuple[int, str]:
        """Store a stream of chunks in constant memory; returns (size, sha256 hex).

        The current part collects in a `_PartSpool` (at most SPILL_BYTES in memory, the rest in an
        unnamed temporary file under `Settings.work_dir`, removed when the upload ends however it
        ends) and is sent from there as soon as it reaches the part size (parts may be a chunk
        longer, which S3 allows). A stream that fits in one part is one PUT; an empty stream stores
        an empty object. Past `max_bytes` the upload is aborted and ObjectTooLarge raised, leaving
        neither an object nor an unfinished multipart upload.
        """
        part_bytes = part_size_for(max_bytes, self._settings.multipart_part_bytes)
        digest = hashlib.sha256()
        total = 0
        upload: _MultipartUpload | None = None
        async with _PartSpool(self._settings.work_dir) as part:
            try:
                with _unavailable_on_transport_errors():
                    async for chunk in chunks:
                        total += len(chunk)
                        if total > max_bytes:
                            raise ObjectTooLarge(key, max_bytes)
                        digest.update(chunk)
                        await part.write(chunk)
                        if part.size >= part_bytes:
                            if upload is None:
                                upload = await self._create_multipart(key, content_type)
                            await upload.upload_part(await part.body())
                            await part.clear()
                    if upload is None:
                        body = await part.body()
                        await self.client.put_object(Bucket=self._bucket, Key=key, Body=body, ContentType=content_type)
                    else:
                        if part.size:
                            await upload.upload_part(await part.body())
                        await upload.complete()
            except BaseException:
                if upload is not None:
                    await _abort_quietly(upload)
                raise
        return total, digest.hexdigest()

    async def _create_multipart(self, key: str, content_type: str) -> _MultipartUpload:
        response = await self.client.create_multipart_upload(Bucket=self._bucket, Key=key, ContentType=content_type)
        return _MultipartUpload(self.client, self._bucket, key, response["UploadId"])

    async def _multipart(
        self, key: str, content_type: str, send_parts: Callable[[_MultipartUpload], Awaitable[None]]
    ) -> None:
        with _unavailable_on_transport_errors():
            upload = await self._create_multipart(key, content_type)
            try:
                await send_parts(upload)
                await upload.complete()
            except BaseException:
                await _abort_quietly(upload)
                raise


class _PartSpool:
    """The part of a streamed upload being received: up to `spill_bytes` in memory, the rest on disk.

    The temporary file is made on the first spill (unnamed where the OS allows it, so nothing is left
    behind even by a killed process), reused for every part of the upload and closed -- which
    removes it -- on exit. File I/O runs in threads: the event loop never waits on the disk.
    """

    def __init__(self, directory: Path | None, spill_bytes: int = SPILL_BYTES) -> None:
        self._directory = directory
        self._spill_bytes = spill_bytes
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._file: IO[bytes] | None = None
        self.size = 0  # bytes of the current part, in memory and on disk

    async def __aenter__(self) -> _PartSpool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._pending = []
        file, self._file = self._file, None
        if file is not None:
            # Shielded: a cancelled upload still closes (and so deletes) its file.
            await asyncio.shield(asyncio.to_thread(file.close))

    async def write(self, chunk: bytes) -> None:
        self._pending.append(chunk)
        self._pending_bytes += len(chunk)
        self.size += len(chunk)
        if self._pending_bytes >= self._spill_bytes:
            await self._spill()

    async def body(self) -> io.IOBase:
        """The whole part as a file positioned at its start, for exactly one request.

        botocore sizes it with seek/tell and reads it through for the SigV4 payload hash, seeking
        back; aiohttp then sends it, reading in a thread. Both read at most READ_BYTES at a time.
        """
        if self._file is None:  # never spilled: the part is small enough to send from memory
            return io.BytesIO(_join(self._pending))
        if self._pending:
            await self._spill()
        await asyncio.to_thread(self._file.seek, 0)  # also flushes the write buffer
        return _SmallReads(self._file)

    async def clear(self) -> None:
        """Empty the spool for the next part (the file is truncated, and the part must have been sent)."""
        self._pending = []
        self._pending_bytes = 0
        self.size = 0
        if self._file is not None:
            await asyncio.to_thread(_truncate, self._file)

    async def _spill(self) -> None:
        pending, self._pending, self._pending_bytes = self._pending, [], 0
        if self._file is None:
            self._file = await asyncio.to_thread(_temporary_file, self._directory)
        await asyncio.to_thread(self._file.writelines, pending)


class _SmallReads(io.RawIOBase):
    """A file seen through reads of at most `max_read` bytes (for readers that ask for more).

    Closing it leaves the file open: the spool owns the file and closes it.
    """

    def __init__(self, file: IO[bytes], max_read: int = READ_BYTES) -> None:
        super().__init__()
        self._file = file
        self._max_read = max_read

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._file.fileno()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self._file.read()
        return self._file.read(min(size, self._max_read))

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _temporary_file(directory: Path | None) -> IO[bytes]:
    return tempfile.TemporaryFile(dir=directory)


def _truncate(file: IO[bytes]) -> None:
    file.seek(0)
    file.truncate()


async def _abort_quietly(upload: _MultipartUpload) -> None:
    """Abort an unfinished upload, even while being cancelled; never mask the original error."""
    try:
        await asyncio.shield(upload.abort())
    except Exception:  # the original exception matters more than a failed cleanup
        pass


def _join(chunks: list[bytes]) -> bytes:
    """Join and empty `chunks`, so the pieces can be freed as soon as the joined copy exists."""
    joined = b"".join(chunks)
    chunks.clear()
    return joined


class _SignedRequests:
    """HeadObject, PutObject and GetObject as aiobotocore sends them (path-style URLs as signed, SigV4 by botocore's
    own signer, its CA bundle and the proxy environment, retries with its standard mode's backoff on connection errors
    and 500/502/503/504), on a plain aiohttp session: aiobotocore's event hooks, endpoint rules and response parsing
    cost ~0.5 ms of CPU per HEAD and ~1 ms per small PUT, two to three times the request itself. Every process and
    result-cache hit HEADs its uploads; every run GETs its inputs and PUTs its reports and manifest."""

    ATTEMPTS = 3  # as botocore_config's retries
    RETRY_STATUSES = frozenset({500, 502, 503, 504})

    def __init__(self, settings: Settings, endpoint_url: str, bucket: str) -> None:
        self._base = f"{endpoint_url.rstrip('/')}/{quote(bucket, safe='')}/"
        self._credentials = Credentials(settings.s3_access_key_id, settings.s3_secret_access_key)
        self._region = settings.s3_region
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=MAX_POOL_CONNECTIONS, ssl=ssl.create_default_context(cafile=_ca_bundle())
            ),
            timeout=aiohttp.ClientTimeout(sock_connect=5, sock_read=60),
            auto_decompress=False,
        )
        self._proxy = _environment_proxy(self._base)

    async def close(self) -> None:
        await self._session.close()

    async def head(self, key: str) -> ObjectInfo | None:
        status, headers = await self._send("HeadObject", key)
        if status == 404:
            return None
        return ObjectInfo(
            key=key,
            size=int(headers["Content-Length"]),
            content_type=headers.get("Content-Type"),
            etag=_strip_etag(headers.get("ETag")),
        )

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await self._send("PutObject", key, data, {"Content-Type": content_type})

    async def download(self, key: str, path: Path, chunk_size: int, if_match: str | None) -> int:
        """GetObject of `key` (with `if_match`, only that ETag's version) streamed to `path`: the bytes written.
        ObjectNotFound, ObjectChanged (412), ClientError for another 3xx/4xx, StorageUnavailable for a 5xx, a store
        that stays unreachable or a body cut short (no file is left then)."""
        headers = None if if_match is None else {"If-Match": f'"{if_match}"'}
        written: list[int] = []

        async def receive(answer: aiohttp.ClientResponse) -> None:
            written.append(await _body_to_file(answer, path, chunk_size))

        try:
            await self._send("GetObject", key, None, headers, receive)
        except ClientError as exc:
            if _http_status(exc) == 404:
                raise ObjectNotFound(key) from exc
            if _http_status(exc) == 412:
                raise ObjectChanged(key) from exc
            raise
        return written[0]

    async def _send(
        self,
        operation: str,
        key: str,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        receive: Callable[[aiohttp.ClientResponse], Awaitable[None]] | None = None,
    ) -> tuple[int, Mapping[str, str]]:
        """The answer's status and headers: a success, or 404 to a HEAD; ClientError for another 3xx/4xx (as
        botocore raises it), StorageUnavailable for a 5xx or a store that stays unreachable
        (_unavailable_on_transport_errors). `receive` reads a successful answer's body (a failure there is not
        retried: StorageUnavailable)."""
        method = _METHODS[operation]
        url = self._base + quote(key, safe="/~")
        for attempt in range(1, self.ATTEMPTS + 1):
            request = AWSRequest(method=method, url=url, data=data, headers=headers)
            S3SigV4Auth(self._credentials, "s3", self._region).add_auth(request)
            # The URL exactly as signed (yarl would re-encode it), the body as a stream (bytes would be copied
            # whole into the transport's buffer, as the streamed uploads above avoid).
            body = None if data is None else io.BytesIO(data)
            target = yarl.URL(url, encoded=True)
            try:
                sent = self._session.request(
                    method, target, data=body, headers=dict(request.headers), proxy=self._proxy
                )
                async with sent as answer:
                    status, answer_headers = answer.status, answer.headers
                    if receive is not None and status < 300:
                        try:
                            await receive(answer)
                        except (aiohttp.ClientError, TimeoutError, IncompleteReadError) as exc:
                            raise StorageUnavailable(f"object store read failed: {exc!r}") from exc
            except (aiohttp.ClientError, TimeoutError) as exc:
                if attempt == self.ATTEMPTS:
                    raise StorageUnavailable(f"object store unreachable: {exc!r}") from exc
            else:
                if status < 300 or (status == 404 and method == "HEAD"):
                    return status, answer_headers
                if status < 500:
                    error = {"Error": {"Code": str(status)}, "ResponseMetadata": {"HTTPStatusCode": status}}
                    raise ClientError(error, operation)  # type: ignore[arg-type]
                if status not in self.RETRY_STATUSES or attempt == self.ATTEMPTS:
                    raise StorageUnavailable(f"object store error: {operation} answered {status}")
            await asyncio.sleep(random.random() * 2 ** (attempt - 1))  # botocore's standard mode: full jitter
        raise AssertionError("unreachable")


_METHODS = {"HeadObject": "HEAD", "PutObject": "PUT", "GetObject": "GET"}


async def _read_up_to(content: aiohttp.StreamReader, size: int) -> bytes:
    """The next `size` bytes of a body (fewer only at its end; b"" there), however the network splits them."""
    parts: list[bytes] = []
    got = 0
    while got < size and (part := await content.read(size - got)):
        parts.append(part)
        got += len(part)
    return _join(parts)


async def _body_to_file(answer: aiohttp.ClientResponse, path: Path, chunk_size: int) -> int:
    """An answer's body written to `path`, checked against its Content-Length (IncompleteReadError when shorter,
    and no file is left): a small one at once, a larger one chunk by chunk with the writes in a thread."""
    expected = answer.content_length
    if expected is not None and expected <= INLINE_FILE_BYTES:
        data = await answer.read()
        if len(data) != expected:
            raise IncompleteReadError(actual_bytes=len(data), expected_bytes=expected)
        try:
            path.write_bytes(data)  # noqa: ASYNC240 - a small file (INLINE_FILE_BYTES)
        except BaseException:
            path.unlink(missing_ok=True)  # noqa: ASYNC240 - a full disk leaves no part of the file, as below
            raise
        return expected
    written = 0
    file = await asyncio.to_thread(path.open, "wb")
    try:
        while chunk := await _read_up_to(answer.content, chunk_size):
            await asyncio.to_thread(file.write, chunk)
            written += len(chunk)
        if expected is not None and written != expected:
            raise IncompleteReadError(actual_bytes=written, expected_bytes=expected)
    except BaseException:
        await asyncio.to_thread(_close_and_unlink, file, path)
        raise
    await asyncio.to_thread(file.close)
    return written


def _ca_bundle() -> str | None:
    """The certificates botocore trusts: AWS_CA_BUNDLE when set, else its default bundle (certifi's)."""
    return os.environ.get("AWS_CA_BUNDLE") or get_cert_path(True)


def _environment_proxy(url: str) -> str | None:
    """The proxy HTTP(S)_PROXY and NO_PROXY give for `url`, as botocore reads them; read once (aiohttp's
    `trust_env` looks them up again, in a thread, for every request)."""
    parts = urlsplit(url)
    if proxy_bypass(parts.hostname or ""):
        return None
    return getproxies_environment().get(parts.scheme)


def _strip_etag(etag: str | None) -> str | None:
    return etag.strip('"') if etag else None


def _close_and_unlink(file: IO[bytes], path: Path) -> None:
    file.close()
    path.unlink(missing_ok=True)
