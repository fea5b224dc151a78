// Requests of the account page and the signed-in session they carry. The access token lives in
// sessionStorage only (never localStorage or a cookie), so it is gone when the tab closes.

// sessionStorage key of the signed-in session: {"token": ..., "expires_at": epoch ms}.
export const SESSION_KEY = "idsentry.session";
// One minute of margin, so the page ends a session before the API starts rejecting its token.
const EXPIRY_MARGIN_MS = 60 * 1000;

const api = {
  baseUrl: null,
  locale: "zh-CN",
  onRejected: () => {},
};

export class NetworkError extends Error {}

// The API rejected the access token, or there was none. `onRejected` has already run.
export class SessionEndedError extends Error {}

// A response with a status the caller did not expect. `result` is what `request` returned.
export class ApiError extends Error {
  constructor(result) {
    super(`unexpected HTTP status ${result.status}`);
    this.result = result;
  }
}

// Set the API's base URL, the language of its messages, and what to do when it rejects the token.
export function configureApi(baseUrl, locale, onRejected) {
  api.baseUrl = baseUrl;
  api.locale = locale;
  api.onRejected = onRejected;
}

// Return the tab's session, or null (and forget it) when there is none or it has expired.
export function readSession() {
  let session = null;
  try {
    session = JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? "null");
  } catch {
    session = null;
  }
  if (typeof session?.token !== "string" || !(session.expires_at > Date.now())) {
    sessionStorage.removeItem(SESSION_KEY);
    return null;
  }
  return session;
}

// Keep a new access token for `expiresIn` seconds, less the margin.
export function saveSession(token, expiresIn) {
  const lifetimeMs = Math.max(Number(expiresIn) * 1000 - EXPIRY_MARGIN_MS, 0);
  sessionStorage.setItem(SESSION_KEY, JSON.stringify({ token, expires_at: Date.now() + lifetimeMs }));
}

export function forgetSession() {
  sessionStorage.removeItem(SESSION_KEY);
}

// Send one request to the API and return {status, payload, retryAfter}. With `auth`, it carries
// the session's token, and a 401 or 403 (API Gateway's responses to a missing, expired or forged
// token) calls `onRejected` and raises SessionEndedError. Raises NetworkError when no response
// arrives.
export async function request(method, path, { body, auth = false } = {}) {
  const headers = {
    Accept: "application/json",
    // API messages, field errors included, come in the page's language.
    "Accept-Language": api.locale,
  };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
  }
  const token = auth ? readSession()?.token : undefined;
  if (auth && token === undefined) {
    api.onRejected();
    throw new SessionEndedError();
  }
  if (auth) {
    headers.Authorization = `Bearer ${token}`;
  }

  let response;
  try {
    response = await fetch(api.baseUrl + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
  } catch (error) {
    throw new NetworkError(String(error));
  }
  if (auth && (response.status === 401 || response.status === 403)) {
    // A late rejection of an old token leaves a newer session alone.
    const current = readSession();
    if (current === null || current.token === token) {
      api.onRejected();
    }
    throw new SessionEndedError();
  }

  let payload = null;
  try {
    payload = await response.json();
  } catch {
    payload = null;
  }
  const retryAfter = Number.parseInt(response.headers.get("Retry-After") ?? "", 10);
  return { status: response.status, payload, retryAfter: Number.isFinite(retryAfter) ? retryAfter : null };
}

// Send a request of the signed-in subscriber and return its JSON body when the status is
// `expected`. Raises ApiError for any other status.
export async function account(method, path, expected, body) {
  const result = await request(method, path, { body, auth: true });
  if (result.status !== expected) {
    throw new ApiError(result);
  }
  return result.payload;
}
