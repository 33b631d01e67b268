"""Storage against a real SeaweedFS, which checks signatures, expiry and signed headers."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import os
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from uuid import uuid4

import httpx
import pytest
from aiohttp import web
from botocore.exceptions import ClientError

from service.config import Settings
from service.storage import (
    MIN_PART_BYTES,
    ObjectChanged,
    ObjectNotFound,
    ObjectTooLarge,
    Storage,
    StorageUnavailable,
    content_disposition,
    part_size_for,
)
from tests.support import stored_keys

MiB = 1024**2


@pytest.fixture
def prefix(settings: Settings) -> str:
    return f"{settings.key_prefix}{uuid4().hex[:12]}/"


@pytest.fixture(scope="module")
async def small_parts(settings: Settings, storage: Storage) -> AsyncIterator[Storage]:
    """A store with the smallest part size S3 allows, so multipart tests stay small."""
    async with Storage(settings.model_copy(update={"multipart_part_bytes": MIN_PART_BYTES})) as store:
        yield store


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


async def chunks_of(data: bytes, sizes: Iterable[int]) -> AsyncIterator[bytes]:
    offset = 0
    for size in sizes:
        if offset >= len(data):
            return
        yield data[offset : offset + size]
        offset += size


async def open_uploads(storage: Storage, key: str) -> list[dict[str, object]]:
    response = await storage.client.list_multipart_uploads(Bucket=storage.bucket, Prefix=key)
    uploads: list[dict[str, object]] = response.get("Uploads", [])
    return uploads


def signed_headers(url: str) -> set[str]:
    return set(parse_qs(urlsplit(url).query)["X-Amz-SignedHeaders"][0].split(";"))


# --- presigned PUT ------------------------------------------------------------------------------


async def test_presigned_put_stores_the_declared_object(storage: Storage, prefix: str, http: httpx.AsyncClient) -> None:
    body = b"a,b\n1,2\n"
    upload = await storage.presign_put(f"{prefix}primary.csv", "text/csv", len(body), expires_s=60)

    assert upload.method == "PUT"
    assert {"content-type", "content-length"} <= signed_headers(upload.url)
    assert upload.headers == {"Content-Type": "text/csv", "Content-Length": str(len(body))}
    response = await http.put(upload.url, content=body, headers=upload.headers)

    assert response.status_code == 200, response.text
    info = await storage.head(f"{prefix}primary.csv")
    assert info is not None
    assert (info.size, info.content_type) == (len(body), "text/csv")


async def test_presigned_put_refuses_another_content_type(
    storage: Storage, prefix: str, http: httpx.AsyncClient
) -> None:
    body = b"a,b\n1,2\n"
    upload = await storage.presign_put(f"{prefix}primary.csv", "text/csv", len(body), expires_s=60)

    response = await http.put(upload.url, content=body, headers={"Content-Type": "application/octet-stream"})

    assert response.status_code in (400, 403), response.text
    assert await storage.head(f"{prefix}primary.csv") is None


@pytest.mark.parametrize("actual_size", [99, 101, 0])
async def test_presigned_put_refuses_another_size(
    storage: Storage, prefix: str, http: httpx.AsyncClient, actual_size: int
) -> None:
    upload = await storage.presign_put(f"{prefix}primary.csv", "text/csv", 100, expires_s=60)

    # httpx sends the real length of this body as Content-Length, as every client does.
    response = await http.put(upload.url, content=b"x" * actual_size, headers={"Content-Type": "text/csv"})

    assert response.status_code in (400, 403), response.text
    assert await storage.head(f"{prefix}primary.csv") is None


async def test_presigned_put_refuses_an_expired_url(storage: Storage, prefix: str, http: httpx.AsyncClient) -> None:
    upload = await storage.presign_put(f"{prefix}late.csv", "text/csv", 3, expires_s=1)
    assert upload.expires_at.timestamp() <= time.time() + 1

    deadline = time.monotonic() + 10
    refused = None
    while time.monotonic() < deadline:
        # Each PUT targets its own key so an early success cannot hide a later refusal.
        response = await http.put(upload.url, content=b"abc", headers=upload.headers)
        if response.status_code != 200:
            refused = response
            break
        await storage.delete_prefix(f"{prefix}late.csv")
        await asyncio.sleep(0.1)

    assert refused is not None, "the URL was still accepted 10 s after it expired"
    assert refused.status_code == 403
    assert "expired" in refused.text.lower()
    assert await storage.head(f"{prefix}late.csv") is None


async def test_presigned_urls_use_the_public_endpoint(settings: Settings, prefix: str, http: httpx.AsyncClient) -> None:
    assert settings.s3_endpoint_url is not None
    public = settings.s3_endpoint_url.replace("127.0.0.1", "localhost")
    async with Storage(settings.model_copy(update={"s3_public_endpoint_url": public})) as store:
        upload = await store.presign_put(f"{prefix}p.json", "application/json", 2, expires_s=60)
        assert upload.url.startswith(f"{public}/")

        response = await http.put(upload.url, content=b"{}", headers=upload.headers)

        assert response.status_code == 200, response.text
        assert (await store.get_bytes(f"{prefix}p.json", max_bytes=10)) == b"{}"


# --- presigned GET ------------------------------------------------------------------------------


async def test_presigned_get_downloads_under_the_file_name(
    storage: Storage, prefix: str, http: httpx.AsyncClient
) -> None:
    await storage.put_bytes(f"{prefix}outputs/report.json", b'{"ok": true}', "application/json")

    url, expires_at = await storage.presign_get(
        f"{prefix}outputs/report.json", "résumé report.json", expires_s=60, content_type="text/plain"
    )
    response = await http.get(url)

    assert response.status_code == 200, response.text
    assert response.content == b'{"ok": true}'
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9%20report.json" in disposition
    assert 'filename="r_sum_ report.json"' in disposition
    assert response.headers["content-type"] == "text/plain"
    assert expires_at.timestamp() == pytest.approx(time.time() + 60, abs=5)


def test_content_disposition_escapes_quotes_and_backslashes() -> None:
    header = content_disposition('a"b\\c.csv')

    assert header == "attachment; filename=\"a_b_c.csv\"; filename*=UTF-8''a%22b%5Cc.csv"


# --- metadata, list, delete ---------------------------------------------------------------------


async def test_head_of_a_missing_object_is_none(storage: Storage, prefix: str) -> None:
    assert await storage.head(f"{prefix}nothing.csv") is None


KEY_NAMES = ["primary.csv", "a b+c%d.csv", "données ä/ü~.csv", "a(1)!'*.csv", "x:y@z=1&b;c,$.csv"]


@pytest.mark.parametrize("name", KEY_NAMES)
async def test_head_says_what_aiobotocore_says(storage: Storage, prefix: str, name: str) -> None:
    """The lean HEAD (signed by botocore, sent by aiohttp) gives what aiobotocore's head_object gives, whatever
    the key's characters (each must be signed as the store canonicalises it)."""
    key = f"{prefix}head/{name}"
    await storage.client.put_object(Bucket=storage.bucket, Key=key, Body=b"id\n1\n2\n", ContentType="text/csv")
    info = await storage.head(key)
    reference = await storage.client.head_object(Bucket=storage.bucket, Key=key)
    assert info is not None
    assert (info.key, info.size, info.content_type, info.etag) == (
        key,
        reference["ContentLength"],
        reference["ContentType"],
        reference["ETag"].strip('"'),
    )


@pytest.mark.parametrize("name", KEY_NAMES)
async def test_put_bytes_stores_what_aiobotocore_reads_back(storage: Storage, prefix: str, name: str) -> None:
    """The lean PUT (signed by botocore, sent by aiohttp) stores the bytes and the Content-Type as given."""
    key, data = f"{prefix}put/{name}", bytes(range(256)) * 300
    await storage.put_bytes(key, data, "application/vnd.ms-excel")
    stored = await storage.client.get_object(Bucket=storage.bucket, Key=key)
    async with stored["Body"] as body:
        assert await body.read() == data
    assert stored["ContentType"] == "application/vnd.ms-excel"
    assert stored["ETag"].strip('"') == hashlib.md5(data).hexdigest()  # noqa: S324 - S3's ETag of one PUT


async def test_head_and_put_refused_by_the_store_raise_its_client_error(settings: Settings, prefix: str) -> None:
    wrong = settings.model_copy(update={"s3_secret_access_key": "not-the-secret"})
    async with Storage(wrong) as store:
        with pytest.raises(ClientError) as refused:
            await store.head(f"{prefix}primary.csv")
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        with pytest.raises(ClientError) as refused:
            await store.put_bytes(f"{prefix}primary.csv", b"id\n", "text/csv")
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


@contextlib.asynccontextmanager
async def answering(statuses: list[int]) -> AsyncIterator[tuple[str, list[str]]]:
    """A stand-in store on a local port answering each request with the next of `statuses` (the last one again
    once they run out); yields its URL and the methods it received."""
    received: list[str] = []

    async def answer(request: web.Request) -> web.Response:
        received.append(request.method)
        await request.read()
        return web.Response(status=statuses[min(len(received), len(statuses)) - 1], headers={"Content-Length": "0"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", received
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("status", [500, 501, 503, 507])
async def test_a_5xx_answer_is_storage_unavailable_after_the_retries_of_a_transient_one(
    settings: Settings, status: int
) -> None:
    """As botocore's mapping was: every 5xx is StorageUnavailable (the API answers 503, the worker retries the
    run); 500, 502, 503 and 504 are retried first, three attempts in all, others are not."""
    async with (
        answering([status]) as (url, received),
        Storage(settings.model_copy(update={"s3_endpoint_url": url})) as store,
    ):
        with pytest.raises(StorageUnavailable):
            await store.head("k/primary.csv")
        with pytest.raises(StorageUnavailable):
            await store.put_bytes("k/report.json", b"{}", "application/json")
    attempts = 3 if status in (500, 503) else 1
    assert received == ["HEAD"] * attempts + ["PUT"] * attempts


async def test_a_transient_failure_then_success_is_retried(settings: Settings) -> None:
    async with (
        answering([503, 200]) as (url, received),
        Storage(settings.model_copy(update={"s3_endpoint_url": url})) as store,
    ):
        await store.put_bytes("k/report.json", b"{}", "application/json")
    assert received == ["PUT", "PUT"]


async def test_head_and_put_of_an_unreachable_store_raise_storage_unavailable(settings: Settings, prefix: str) -> None:
    closed = settings.model_copy(update={"s3_endpoint_url": "http://127.0.0.1:9"})
    async with Storage(closed) as store:
        with pytest.raises(StorageUnavailable):
            await store.head(f"{prefix}primary.csv")
        with pytest.raises(StorageUnavailable):
            await store.put_bytes(f"{prefix}primary.csv", b"id\n", "text/csv")


async def test_delete_prefix_covers_every_page(storage: Storage, prefix: str) -> None:
    keys = [f"{prefix}inputs/{i:02d}.txt" for i in range(25)]
    await asyncio.gather(*(storage.put_bytes(key, key.encode(), "text/plain") for key in keys))
    await storage.put_bytes(f"{prefix}outputs/manifest.json", b"{}", "application/json")
    assert await stored_keys(storage, f"{prefix}inputs/", page_size=10) == keys  # three pages

    assert await storage.delete_prefix(f"{prefix}inputs/", batch_size=10) == 25  # three batches
    assert await stored_keys(storage, f"{prefix}inputs/") == []
    assert await stored_keys(storage, prefix) == [f"{prefix}outputs/manifest.json"]


async def test_delete_prefix_aborts_unfinished_multipart_uploads(storage: Storage, prefix: str) -> None:
    key = f"{prefix}inputs/big.csv"
    await storage.client.create_multipart_upload(Bucket=storage.bucket, Key=key)
    assert len(await open_uploads(storage, key)) == 1

    assert await storage.delete_prefix(prefix) == 0

    assert await open_uploads(storage, key) == []


async def test_delete_prefix_refuses_an_empty_prefix(storage: Storage) -> None:
    with pytest.raises(ValueError):
        await storage.delete_prefix("")


# --- small objects ------------------------------------------------------------------------------


async def test_put_and_get_bytes(storage: Storage, prefix: str) -> None:
    await storage.put_bytes(f"{prefix}parameters.json", b'{"a": 1}', "application/json")

    assert await storage.get_bytes(f"{prefix}parameters.json", max_bytes=8) == b'{"a": 1}'
    with pytest.raises(ObjectTooLarge):
        await storage.get_bytes(f"{prefix}parameters.json", max_bytes=7)
    with pytest.raises(ObjectNotFound):
        await storage.get_bytes(f"{prefix}missing.json", max_bytes=7)


# --- streaming reads ----------------------------------------------------------------------------


async def test_download_to_file_streams_a_multi_megabyte_object(
    small_parts: Storage, prefix: str, tmp_path: Path
) -> None:
    data = os.urandom(6 * MiB + 12345)
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    await small_parts.upload_file(source, f"{prefix}inputs/data.bin", "application/octet-stream")

    target = tmp_path / "downloaded.bin"
    written = await small_parts.download_to_file(f"{prefix}inputs/data.bin", target, chunk_size=256 * 1024)

    assert written == len(data)
    assert hashlib.sha256(target.read_bytes()).digest() == hashlib.sha256(data).digest()


async def test_download_of_an_object_written_again_since_its_etag_raises(
    storage: Storage, prefix: str, tmp_path: Path
) -> None:
    """With `if_match` a download reads only the version it names: the bytes process verified are the bytes a run
    reads, or it says they changed."""
    key = f"{prefix}inputs/primary.csv"
    await storage.put_bytes(key, b"id\n1\n", "text/csv")
    first = await storage.head(key)
    assert first is not None and first.etag
    assert await storage.download_to_file(key, tmp_path / "a.csv", if_match=first.etag) == 5
    await storage.put_bytes(key, b"id\n2\n3\n", "text/csv")
    with pytest.raises(ObjectChanged):
        await storage.download_to_file(key, tmp_path / "b.csv", if_match=first.etag)
    assert not (tmp_path / "b.csv").exists()


async def test_download_of_a_missing_object_raises_and_leaves_no_file(
    storage: Storage, prefix: str, tmp_path: Path
) -> None:
    target = tmp_path / "nothing.bin"

    with pytest.raises(ObjectNotFound):
        await storage.download_to_file(f"{prefix}nothing.bin", target)

    assert not target.exists()


# --- uploads ------------------------------------------------------------------------------------


async def test_upload_file_larger_than_a_part_goes_multipart(small_parts: Storage, prefix: str, tmp_path: Path) -> None:
    data = os.urandom(2 * MIN_PART_BYTES + 777)
    source = tmp_path / "big.csv"
    source.write_bytes(data)

    size = await small_parts.upload_file(source, f"{prefix}inputs/big.csv", "text/csv")

    info = await small_parts.head(f"{prefix}inputs/big.csv")
    assert size == len(data)
    assert info is not None and info.size == len(data) and info.content_type == "text/csv"
    assert info.etag is not None and info.etag.endswith("-3")  # three parts
    assert await small_parts.get_bytes(f"{prefix}inputs/big.csv", max_bytes=len(data)) == data


async def test_upload_file_within_one_part_is_a_single_put(small_parts: Storage, prefix: str, tmp_path: Path) -> None:
    source = tmp_path / "small.csv"
    source.write_bytes(b"a\n1\n")

    assert await small_parts.upload_file(source, f"{prefix}small.csv", "text/csv") == 4

    info = await small_parts.head(f"{prefix}small.csv")
    assert info is not None and info.etag == hashlib.md5(b"a\n1\n").hexdigest()


async def test_upload_stream_with_odd_chunks_across_part_boundaries(small_parts: Storage, prefix: str) -> None:
    data = os.urandom(2 * MIN_PART_BYTES + 4321)
    sizes = itertools.cycle([1, 65537, 999_999, 3, 1_500_001])

    size, sha256 = await small_parts.upload_stream(
        f"{prefix}inputs/primary.csv", chunks_of(data, sizes), "text/csv", max_bytes=len(data)
    )

    assert (size, sha256) == (len(data), hashlib.sha256(data).hexdigest())
    info = await small_parts.head(f"{prefix}inputs/primary.csv")
    assert info is not None and info.size == len(data) and info.content_type == "text/csv"
    assert info.etag is not None and int(info.etag.rpartition("-")[2]) >= 2  # multipart
    assert await small_parts.get_bytes(f"{prefix}inputs/primary.csv", max_bytes=len(data)) == data


async def test_upload_stream_of_a_small_body_is_one_object(small_parts: Storage, prefix: str) -> None:
    size, sha256 = await small_parts.upload_stream(
        f"{prefix}small.csv", chunks_of(b"a,b\n1,2\n", [3, 3, 3]), "text/csv", max_bytes=100
    )

    assert (size, sha256) == (8, hashlib.sha256(b"a,b\n1,2\n").hexdigest())
    assert await small_parts.get_bytes(f"{prefix}small.csv", max_bytes=100) == b"a,b\n1,2\n"


async def test_upload_stream_of_nothing_stores_an_empty_object(storage: Storage, prefix: str) -> None:
    size, sha256 = await storage.upload_stream(f"{prefix}empty.csv", chunks_of(b"", []), "text/csv", 100)

    assert (size, sha256) == (0, hashlib.sha256(b"").hexdigest())
    info = await storage.head(f"{prefix}empty.csv")
    assert info is not None and info.size == 0


@pytest.mark.parametrize("total", [MIN_PART_BYTES * 2 + 1, 1000])
async def test_upload_stream_over_the_limit_leaves_nothing_behind(
    small_parts: Storage, prefix: str, total: int
) -> None:
    key = f"{prefix}inputs/huge.csv"
    data = b"x" * total

    with pytest.raises(ObjectTooLarge):
        await small_parts.upload_stream(key, chunks_of(data, itertools.repeat(65536)), "text/csv", total - 1)

    assert await small_parts.head(key) is None
    assert await open_uploads(small_parts, key) == []


async def test_upload_stream_aborts_when_the_source_fails(small_parts: Storage, prefix: str) -> None:
    key = f"{prefix}inputs/broken.csv"

    async def failing() -> AsyncIterator[bytes]:
        for _ in range(7):
            yield b"y" * MiB  # past one part: the multipart upload has started
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await small_parts.upload_stream(key, failing(), "text/csv", max_bytes=100 * MiB)

    assert await small_parts.head(key) is None
    assert await open_uploads(small_parts, key) == []


async def test_upload_stream_memory_stays_far_below_one_part(small_parts: Storage, prefix: str) -> None:
    chunk = os.urandom(64 * 1024)
    count = 200 * MiB // len(chunk)
    part = part_size_for(200 * MiB, MIN_PART_BYTES)

    async def generated() -> AsyncIterator[bytes]:
        for _ in range(count):
            yield chunk

    tracemalloc.start()
    try:
        size, _ = await small_parts.upload_stream(
            f"{prefix}inputs/large.bin", generated(), "application/octet-stream", max_bytes=200 * MiB
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert size == count * len(chunk)
    print(f"upload_stream peak traced memory {peak / MiB:.2f} MiB with {part / MiB:.0f} MiB parts")
    # Parts wait in a temporary file: what stays in memory is the spill buffer, a chunk and the
    # small reads of botocore's payload hash and of aiohttp, not a part.
    assert peak < 1 * MiB < part, f"peak {peak / MiB:.2f} MiB for {part / MiB:.0f} MiB parts"
    await small_parts.delete_prefix(prefix)


def temporary_files_in(directory: Path) -> list[str]:
    """This process's open files in `directory` (unnamed temporary files show as `#inode (deleted)`)."""
    targets = (os.readlink(fd) for fd in Path("/proc/self/fd").iterdir() if fd.is_symlink())
    return [target for target in targets if target.startswith(f"{directory}/")]


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
@pytest.mark.parametrize("fails", [False, True])
async def test_upload_stream_spools_parts_in_work_dir_and_removes_them(
    settings: Settings, prefix: str, tmp_path: Path, fails: bool
) -> None:
    seen_while_uploading: list[str] = []

    async def body() -> AsyncIterator[bytes]:
        for index in range(7):
            if index == 6:
                seen_while_uploading.extend(temporary_files_in(tmp_path))
                if fails:
                    raise ConnectionResetError("client went away")
            yield b"z" * MiB

    update = {"multipart_part_bytes": MIN_PART_BYTES, "work_dir": tmp_path}
    async with Storage(settings.model_copy(update=update)) as store:
        if fails:
            with pytest.raises(ConnectionResetError):
                await store.upload_stream(f"{prefix}spooled.bin", body(), "text/csv", max_bytes=100 * MiB)
        else:
            size, _ = await store.upload_stream(f"{prefix}spooled.bin", body(), "text/csv", max_bytes=100 * MiB)
            assert size == 7 * MiB

    assert len(seen_while_uploading) == 1  # one file per upload, reused for every part
    assert temporary_files_in(tmp_path) == []
    assert list(tmp_path.iterdir()) == []


# --- bucket and reachability --------------------------------------------------------------------


async def test_ensure_bucket_is_idempotent_and_allows_browser_uploads(
    storage: Storage, prefix: str, http: httpx.AsyncClient
) -> None:
    await storage.ensure_bucket(["http://app.example"])
    await storage.ensure_bucket(["http://app.example"])

    rules = (await storage.client.get_bucket_cors(Bucket=storage.bucket))["CORSRules"]
    assert len(rules) == 2
    assert all(rule["AllowedOrigins"] == ["http://app.example"] for rule in rules)
    assert rules[0]["AllowedMethods"] == ["PUT"] and rules[0]["AllowedHeaders"] == ["Content-Type"]
    assert rules[0]["ExposeHeaders"] == ["ETag"]
    # A ranged read of an output through its download link (the page's quarantined rows): GET with Range only.
    assert rules[1]["AllowedMethods"] == ["GET"] and rules[1]["AllowedHeaders"] == ["Range"]
    assert set(rules[1]["ExposeHeaders"]) == {"Content-Range", "Content-Length"}

    upload = await storage.presign_put(f"{prefix}cors.csv", "text/csv", 3, expires_s=60)
    preflight = await http.options(
        upload.url,
        headers={
            "Origin": "http://app.example",
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "content-type",
        },
    )

    assert preflight.status_code == 200, preflight.text
    assert preflight.headers["access-control-allow-origin"] in ("http://app.example", "*")
    assert "PUT" in preflight.headers["access-control-allow-methods"]
    download, _ = await storage.presign_get(f"{prefix}cors.csv", "cors.csv", 60)
    ranged = await http.options(
        download,
        headers={"Origin": "http://app.example", "Access-Control-Request-Method": "GET",
                 "Access-Control-Request-Headers": "range"},
    )  # fmt: skip
    assert ranged.status_code == 200, ranged.text
    assert ranged.headers.get("access-control-allow-origin") in ("http://app.example", "*"), dict(ranged.headers)
    await storage.ensure_bucket()  # back to the default for the other tests


async def test_ping_succeeds_on_a_reachable_store(storage: Storage) -> None:
    await storage.ping()


async def test_ping_of_an_unreachable_store_raises_storage_unavailable(settings: Settings) -> None:
    closed = settings.model_copy(update={"s3_endpoint_url": "http://127.0.0.1:9"})
    async with Storage(closed) as store:
        started = time.monotonic()
        with pytest.raises(StorageUnavailable):
            await store.ping()
        assert time.monotonic() - started < 5  # /readyz must answer promptly
