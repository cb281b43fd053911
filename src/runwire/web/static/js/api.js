// The one way the app talks to the server: JSON in, `data` out, errors as ApiError with the server's details.

import { sessionExpired } from "./router.js";

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `The server answered ${status}.`);
    this.status = status;
    this.details = body?.details || [];
    this.retryAfter = null;
  }
}

export async function api(method, path, body, { signal, headers = {} } = {}) {
  let response;
  try {
    response = await fetch(`/api${path}`, {
      method,
      signal,
      credentials: "same-origin",
      headers: { Accept: "application/json", ...(body !== undefined && { "Content-Type": "application/json" }), ...headers },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, { message: "The server cannot be reached. Check the connection and try again." });
  }
  if (response.status === 204) return null;
  let payload = null;
  try {
    payload = await response.json();
  } catch {
    payload = null;
  }
  if (!response.ok) {
    const error = new ApiError(response.status, payload);
    error.retryAfter = response.headers.get("Retry-After");
    if (response.status === 401 && !path.startsWith("/auth/")) sessionExpired();
    throw error;
  }
  return payload?.data;
}

export const get = (path, options) => api("GET", path, undefined, options);
export const post = (path, body, options) => api("POST", path, body ?? {}, options);
export const patch = (path, body, options) => api("PATCH", path, body, options);
export const del = (path, options) => api("DELETE", path, undefined, options);

/** Every page of a user's workflows (a user has few): [{id, name, ...}]. */
export async function allWorkflows(userId, { signal } = {}) {
  const workflows = [];
  let cursor = null;
  do {
    const query = new URLSearchParams({ limit: "100", ...(cursor && { cursor }) });
    const page = await get(`/users/${userId}/workflows?${query}`, { signal });
    workflows.push(...page.workflows);
    cursor = page.nextCursor;
  } while (cursor && workflows.length < 1000);
  return workflows;
}

let toolsPromise = null;
/** GET /api/tools once per page load; `available` and `reason` may be absent on older servers. */
export function tools() {
  toolsPromise ??= get("/tools").then((data) => data.tools).catch((error) => {
    toolsPromise = null;
    throw error;
  });
  return toolsPromise;
}
