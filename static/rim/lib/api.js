// REST client for /api/: every answer is the {ok, code, msg, data} envelope; a failed
// one becomes an ApiError whose status is the envelope's code (0: no answer at all).
// Uploads go through XMLHttpRequest, for their progress.

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

/**
 * One request in the envelope. `anonymous`: no token goes with it (the login routes, and
 * a file's capability URLs, which are the access themselves).
 */
export async function api(method, path, body, { anonymous = ANONYMOUS.has(path) } = {}) {
  const headers = { Accept: 'application/json' };
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
    throw unreachable();
  }
  let envelope = null;
  try {
    envelope = await res.json();
  } catch {
    // not JSON: dataOf says so
  }
  return dataOf(res.status, envelope, anonymous);
}

const unreachable = () => new ApiError(0, 'The server cannot be reached.');

/** The envelope's data, or the ApiError it stands for. */
function dataOf(httpStatus, envelope, anonymous) {
  if (!envelope || typeof envelope !== 'object' || !('ok' in envelope)) {
    throw new ApiError(httpStatus, `Unexpected answer from the server (HTTP ${httpStatus}).`);
  }
  if (!envelope.ok) {
    const status = envelope.code || httpStatus;
    if (status === 401 && !anonymous && session.token()) session.expired();
    throw new ApiError(status, envelope.msg || `Request failed (HTTP ${status}).`);
  }
  return envelope.data;
}

/** Why an upload ended without an answer: the user cancelled it. */
export class UploadCancelled extends Error {}

/**
 * Sends `file` as the multipart field `field` through XMLHttpRequest, whose upload
 * events report the bytes sent (fetch has no progress for a request body):
 * onProgress(fraction) as it goes. Returns {done, cancel}: done resolves to the
 * envelope's data, or rejects with an ApiError, or UploadCancelled after cancel().
 */
export function upload(path, field, file, onProgress) {
  const xhr = new XMLHttpRequest();
  const done = new Promise((resolve, reject) => {
    xhr.open('POST', path);
    xhr.setRequestHeader('Accept', 'application/json');
    const token = session.token();
    if (token) xhr.setRequestHeader('Authorization', `Bearer ${token}`);
    xhr.upload.addEventListener('progress', (e) => {
      if (e.lengthComputable && e.total > 0) onProgress(e.loaded / e.total);
    });
    xhr.addEventListener('load', () => {
      let envelope = null;
      try {
        envelope = JSON.parse(xhr.responseText);
      } catch {
        // not JSON: dataOf says so
      }
      try {
        resolve(dataOf(xhr.status, envelope, false));
      } catch (err) {
        reject(err);
      }
    });
    xhr.addEventListener('error', () => reject(unreachable()));
    xhr.addEventListener('abort', () => reject(new UploadCancelled('Upload cancelled.')));
    const form = new FormData();
    form.append(field, file, file.name);
    xhr.send(form);
  });
  return { done, cancel: () => xhr.abort() };
}
