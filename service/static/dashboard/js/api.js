// The public query API (docs/api.md), read with the key kept in this browser; every failure becomes a
// Failure whose kind says what the user can do about it (messages.js).

const KEY_STORAGE = "calltrail.readKey";

export function readKey() {
  return localStorage.getItem(KEY_STORAGE);
}

export function saveKey(key) {
  localStorage.setItem(KEY_STORAGE, key);
}

export function forgetKey() {
  localStorage.removeItem(KEY_STORAGE);
}

export class Failure extends Error {
  constructor(kind, message, status = 0) {
    super(message);
    this.kind = kind;
    this.status = status;
  }
}

export async function api(path, params = {}) {
  const key = readKey();
  if (!key) throw new Failure("nokey", "no key");
  const q = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value) q.set(name, value);
  let response;
  try {
    response = await fetch(`${path}?${q}`, { headers: { authorization: `Bearer ${key}` }, cache: "no-store" });
  } catch {
    throw new Failure("down", "unreachable");
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (response.ok && body) return body;
  const error = (body && body.error) || {};
  const details = (error.details || []).map((d) => (d.field ? `${d.field}: ${d.message}` : d.message)).join("; ");
  const text = [error.message || `HTTP ${response.status}`, details].filter(Boolean).join(" — ");
  if (response.status === 401 || response.status === 403) throw new Failure("unauthorized", text, response.status);
  if (response.status === 400) throw new Failure("bad", text, 400);
  if (response.status === 404) throw new Failure("notfound", text, 404);
  throw new Failure(response.status >= 500 ? "server" : "other", text, response.status);
}
