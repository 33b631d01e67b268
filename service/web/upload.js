// Uploads straight to the object store through the presigned URLs of POST .../upload-urls.
// Single files: one PUT. Big files (method MULTIPART): part by part, each part tried 3 times with backoff;
// a resumed upload first asks the API which parts the store already has and skips them.

import { ApiError, get, post } from "./api.js";

const TRIES = 3;
const PART_CONCURRENCY = 3;
const FORBIDDEN = new Set(["content-length", "host"]); // the browser sets these itself

export const CONTENT_TYPES = {
  csv: "text/csv",
  tsv: "text/tab-separated-values",
  txt: "text/plain",
  json: "application/json",
  ndjson: "application/x-ndjson",
  jsonl: "application/x-ndjson",
  parquet: "application/vnd.apache.parquet",
  xlsx: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
  yaml: "application/yaml",
  yml: "application/yaml",
};

export const extension = (file) => (/\.([^./]+)$/.exec(file.name) || [, ""])[1].toLowerCase();

/** What the upload-urls request declares for a file: named by role, typed as the browser says it is
 *  (or by its extension when the browser does not know), so the API can refuse a wrong type; with the
 *  user's own file name, which the reports show. */
export function describe(role, file) {
  const ext = extension(file);
  return {
    name: ext ? `${role}.${ext}` : role,
    content_type: file.type || CONTENT_TYPES[ext] || "application/octet-stream",
    size: file.size,
    display_name: file.name.slice(0, 255),
  };
}

class TransferError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
  get retriable() {
    return this.status === 0 || this.status === 408 || this.status === 429 || this.status >= 500;
  }
}

function send(method, url, body, headers, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    for (const [name, value] of Object.entries(headers || {})) {
      if (!FORBIDDEN.has(name.toLowerCase())) xhr.setRequestHeader(name, value);
    }
    xhr.upload.onprogress = (e) => onProgress(e.loaded);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) return resolve(xhr);
      const text = xhr.responseText || "";
      const detail = /<Message>([^<]*)<\/Message>/.exec(text);
      reject(new TransferError(xhr.status, `Upload refused by the object store (HTTP ${xhr.status})${detail ? ": " + detail[1] : ""}`));
    };
    xhr.onerror = () => reject(new TransferError(0, "Upload interrupted: the object store could not be reached."));
    xhr.onabort = () => reject(new TransferError(0, "Upload aborted."));
    xhr.send(body);
  });
}

async function withRetries(attempt) {
  for (let i = 1; ; i++) {
    try {
      return await attempt();
    } catch (error) {
      if (i >= TRIES || !(error instanceof TransferError && error.retriable)) throw error;
      await new Promise((r) => setTimeout(r, 500 * 2 ** i)); // 1 s, then 2 s
    }
  }
}

async function single(entry, file, onBytes) {
  let body = file;
  if (entry.fields) {
    body = new FormData();
    for (const [k, v] of Object.entries(entry.fields)) body.append(k, v);
    body.append("file", file);
  }
  await withRetries(() => send(entry.method, entry.url, body, entry.headers, (n) => onBytes(Math.min(n, file.size))));
  onBytes(file.size);
}

async function multipart(taskId, entry, file, onBytes, resume) {
  const base = `/tasks/${taskId}/inputs/${encodeURIComponent(entry.name)}`;
  const etags = new Map();
  let sent = 0;
  if (resume) {
    const stored = await get(`${base}/parts?upload_id=${encodeURIComponent(entry.upload_id)}`);
    for (const part of stored.parts) {
      etags.set(part.part_number, part.etag);
      sent += part.size;
    }
  }
  const inFlight = new Map();
  const report = () => onBytes(sent + [...inFlight.values()].reduce((a, b) => a + b, 0));
  report();
  const queue = entry.parts.filter((p) => !etags.has(p.part_number));
  let failure = null;
  const worker = async () => {
    while (queue.length && !failure) {
      const part = queue.shift();
      const start = (part.part_number - 1) * entry.part_size;
      const blob = file.slice(start, start + entry.part_size);
      try {
        const xhr = await withRetries(() =>
          send("PUT", part.url, blob, {}, (n) => {
            inFlight.set(part.part_number, n);
            report();
          }),
        );
        const etag = xhr.getResponseHeader("ETag");
        if (!etag) throw new TransferError(-1, "The object store hid the part's ETag (its CORS rule must expose ETag).");
        etags.set(part.part_number, etag);
        sent += blob.size;
      } catch (error) {
        failure = failure || error;
      } finally {
        inFlight.delete(part.part_number);
        report();
      }
    }
  };
  await Promise.all(Array.from({ length: PART_CONCURRENCY }, worker));
  if (failure) throw failure;
  const parts = [...etags].sort((a, b) => a[0] - b[0]).map(([part_number, etag]) => ({ part_number, etag }));
  await post(`${base}/complete`, { upload_id: entry.upload_id, parts });
}

/** Upload every item ({role, file, entry, done}) not yet done, in parallel. onBytes(item, bytes) reports
 *  progress. Rejects with the first error once all have stopped; items that made it are marked done. */
export async function uploadAll(taskId, items, onBytes, resume = false) {
  const results = await Promise.allSettled(
    items
      .filter((item) => !item.done)
      .map(async (item) => {
        const progress = (n) => onBytes(item, n);
        if (item.entry.method === "MULTIPART") await multipart(taskId, item.entry, item.file, progress, resume);
        else await single(item.entry, item.file, progress);
        item.done = true;
      }),
  );
  const failed = results.find((r) => r.status === "rejected");
  if (failed) throw failed.reason instanceof ApiError ? failed.reason : new ApiError(0, "UPLOAD_FAILED", failed.reason.message);
}

/** Before a resume: fresh presigned entries for the items whose URLs have expired (a new multipart upload
 *  starts from its first part, the old one's URLs being dead). */
export async function refreshExpired(taskId, items) {
  const soon = Date.now() + 60_000;
  const stale = items.filter((item) => !item.done && Date.parse(item.entry.expires_at) < soon);
  if (!stale.length) return;
  const reply = await post(`/tasks/${taskId}/upload-urls`, { files: stale.map((item) => describe(item.role, item.file)) });
  for (const item of stale) item.entry = reply.uploads.find((u) => u.name === item.entry.name) || item.entry;
}
