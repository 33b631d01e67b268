// The public HTTP API (API.md): JSON in and out, errors as {"error": {"code", "message", "details"}}.

const BASE = "/api/v1";
const KEY_STORE = "agensium.api_key";

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export const getKey = () => sessionStorage.getItem(KEY_STORE);
export const setKey = (key) => (key ? sessionStorage.setItem(KEY_STORE, key) : sessionStorage.removeItem(KEY_STORE));

/** One call: rejects with ApiError carrying the API's own code and message. */
export async function api(method, path, body, headers = {}) {
  const init = { method, headers: { Authorization: `Bearer ${getKey()}`, ...headers } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(BASE + path, init);
  } catch {
    throw new ApiError(0, "NETWORK", "Cannot reach the API: check the connection and try again.");
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    /* a proxy's HTML error page */
  }
  if (!response.ok) {
    const error = data && data.error;
    if (error) throw new ApiError(response.status, error.code, error.message, error.details);
    throw new ApiError(response.status, "HTTP_" + response.status, `HTTP ${response.status} ${response.statusText}`);
  }
  return data;
}

/** An Idempotency-Key: a retried create returns the same task. (crypto.randomUUID needs a secure context.) */
export function randomKey() {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

export const get = (path) => api("GET", path);
export const post = (path, body, headers) => api("POST", path, body, headers);
export const del = (path) => api("DELETE", path);
