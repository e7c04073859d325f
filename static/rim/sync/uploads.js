// Sending files: each chosen, dropped or pasted file is uploaded (POST /api/file/upload,
// one at a time, in the order given, so that their messages keep that order), then sent
// as a message of kind Image (a picture) or File carrying the File's URL. An upload
// shows in the store with its progress until then; a cancelled one disappears, a
// refused one stays with the server's reason until it is dismissed, and nothing is sent.

import { ApiError, UploadCancelled, upload as uploadToServer } from '../lib/api.js';
import { formatSize, rememberFile, uploadLimit } from '../lib/files.js';
import { addUpload, changeUpload, dropUpload, setReplyTo, state } from '../lib/store.js';
import { sendMessage } from './outbox.js';

const UPLOAD_PATH = '/api/file/upload';
const FIELD = 'file';

let serial = 0;
let running = null; // the upload on its way, if any

/** Why the server would refuse this file before it is sent, or null. */
function refusal(file) {
  if (file.size === 0) return 'the file is empty';
  const limit = uploadLimit();
  if (file.size > limit) return `the file is ${formatSize(file.size)}, over the upload limit of ${formatSize(limit)}`;
  return null;
}

/**
 * Uploads `files` into `conv`, then sends them there. The first answers the message the
 * composer replies to, if any.
 */
export function attachFiles(conv, files) {
  if (!files.length) return;
  let replyTo = conv.replyTo?.id ?? null;
  setReplyTo(conv, null);
  for (const file of files) {
    const error = refusal(file);
    addUpload({
      id: ++serial,
      gid: conv.gid,
      file,
      name: file.name || 'file',
      progress: 0,
      status: error ? 'failed' : 'queued', // queued, uploading or failed
      error,
      replyTo: error ? null : replyTo,
      cancel: null,
    });
    if (!error) replyTo = null;
  }
  uploadNext();
}

/** Stops an upload (or forgets a refused one): nothing is sent. */
export function cancelUpload(upload) {
  upload.cancel?.();
  dropUpload(upload);
}

/** Signing out: every upload stops. */
export function cancelAllUploads() {
  for (const upload of state.uploads) cancelUpload(upload);
}

async function uploadNext() {
  if (running) return;
  running = state.uploads.find((u) => u.status === 'queued') ?? null;
  if (!running) return;
  const upload = running;
  const { done, cancel } = uploadToServer(UPLOAD_PATH, FIELD, upload.file, (progress) =>
    changeUpload(upload, { progress }),
  );
  changeUpload(upload, { status: 'uploading', cancel });
  try {
    const file = rememberFile(await done);
    if (!file) throw new ApiError(0, 'Unexpected answer from the server.');
    dropUpload(upload);
    send(upload, file);
  } catch (err) {
    if (!(err instanceof UploadCancelled)) changeUpload(upload, { status: 'failed', error: err.message, cancel: null });
  } finally {
    running = null;
    uploadNext();
  }
}

function send(upload, file) {
  const conv = state.convs.get(upload.gid);
  if (!conv) return; // the conversation is gone (left meanwhile)
  sendMessage(conv, file.mime.startsWith('image/') ? 'Image' : 'File', file.url, upload.replyTo);
}
