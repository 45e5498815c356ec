// The one place that talks to the server: JSON in and out, the session cookie, and the
// CSRF token (kept in memory only; after a reload it is read again from the session).

let csrfToken = null;

export function setCsrfToken(token) {
  csrfToken = token;
}

/** A failed request: the problem details (RFC 9457) the server answered with. */
export class ApiError extends Error {
  constructor(status, problem) {
    const detail = problem?.detail || (status
      ? `The server answered ${status}. Retry, or reload the page.`
      : 'The server could not be reached. Check your connection and retry.');
    super(detail);
    this.status = status;
    this.code = problem?.code || null;
    this.detail = detail;
  }
}

export async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch {
    throw new ApiError(0, null);
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/** Every item of a paginated list ({"data", "next_cursor"}). */
export async function listAll(path) {
  const items = [];
  let cursor = null;
  do {
    const query = new URLSearchParams({ limit: '100' });
    if (cursor) query.set('cursor', cursor);
    const page = await api('GET', `${path}?${query}`);
    items.push(...page.data);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}
