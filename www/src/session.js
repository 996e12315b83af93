// The page's session with the API: the bearer token, and the one fetch wrapper every API
// call of the page goes through, which sends it. The token is kept in localStorage so that
// a reload stays signed in. A 401 to a call that carried the current token means the
// session is over (expired, or signed out elsewhere): the `onSessionEnded` hook hears it.

export const API = "/api/v1";
const TOKEN_KEY = "shardrop.token";

// localStorage throws where storage is disabled: the session then lasts as long as the page.
function stored() {
  try {
    return localStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

let token = stored();
let ended = () => {};

export const currentToken = () => token;

export function setToken(t) {
  token = t;
  try {
    t ? localStorage.setItem(TOKEN_KEY, t) : localStorage.removeItem(TOKEN_KEY);
  } catch {}
}

export function onSessionEnded(fn) {
  ended = fn;
}

/** An answer that is not 2xx, as the API's `{code, message}`; a network failure has status 0. */
export class ApiError extends Error {
  constructor(status, code, message, retryAfter = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

/**
 * Calls the API; answers the JSON body (null when empty) or throws an ApiError. `bearer`
 * is the token to send: the session's by default, null for signing in and up.
 */
export async function api(method, path, { body, bearer = token } = {}) {
  const headers = {};
  if (body !== undefined) headers["content-type"] = "application/json";
  if (bearer) headers.authorization = `Bearer ${bearer}`;
  let res, text;
  try {
    res = await fetch(`${API}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    text = await res.text();
  } catch {
    throw new ApiError(0, "network-error", "The server could not be reached.");
  }
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {}
  if (res.ok) return data;
  // Only the session still in use ends: a late answer to an older one must not sign out the new.
  if (res.status === 401 && bearer && bearer === token) ended();
  throw new ApiError(
    res.status,
    data?.code ?? "http-error",
    data?.message ?? `The server answered ${res.status}.`,
    res.headers.get("retry-after"),
  );
}
