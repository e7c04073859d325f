// REST client for /api/: every answer is the {ok, code, msg, data} envelope; a failed
// one becomes an ApiError whose status is the envelope's code (0: no answer at all).

const ANONYMOUS = new Set(['/api/user/login', '/api/user/create']);

const session = {
  token: () => null,
  expired: () => {},
};

/** The session layer says where the token comes from and what a 401 means. */
export function configureApi({ token, expired }) {
  session.token = token;
  session.expired = expired;
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** For toasts: a refused request is worth showing, an unreachable server is not (the banner says it). */
export const isServerRefusal = (err) => err instanceof ApiError && err.status !== 0;

export const q = encodeURIComponent;

export async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  const anonymous = ANONYMOUS.has(path);
  const token = session.token();
  if (token && !anonymous) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
    });
  } catch {
    throw new ApiError(0, 'The server cannot be reached.');
  }
  let envelope = null;
  try {
    envelope = await res.json();
  } catch {
    // not JSON: handled below
  }
  if (!envelope || typeof envelope !== 'object' || !('ok' in envelope)) {
    throw new ApiError(res.status, `Unexpected answer from the server (HTTP ${res.status}).`);
  }
  if (!envelope.ok) {
    const status = envelope.code || res.status;
    if (status === 401 && !anonymous && session.token()) session.expired();
    throw new ApiError(status, envelope.msg || `Request failed (HTTP ${status}).`);
  }
  return envelope.data;
}
