// Files the server stores (docs/protocol.md §9): telling an uploaded file's URL from
// any other, the File behind it (fetched once per URL, from <url>/info: a message
// carries only the URL), and how a file's size, type and picture size read.

import { api } from './api.js';

// The longest side of the server's thumbnails, in pixels.
export const THUMB_PX = 320;
const KEY_RE = /^[A-Za-z0-9_-]{16,64}$/;
// How long a page of history waits for its Files before it is drawn without them.
const PREFETCH_WAIT_MS = 2000;

const page = () => document.body.dataset;

/** Bytes the server takes in one file (the page says; without it, no limit here). */
export const uploadLimit = () => Number(page().uploadMax) || Infinity;

/** Whether `text` is exactly the URL the server gave an uploaded file. */
export function isFileUrl(text) {
  const prefix = page().fileUrlPrefix || '/api/file/';
  return typeof text === 'string' && text.startsWith(prefix) && KEY_RE.test(text.slice(prefix.length));
}

// url -> {file} once answered (file null: the server has no such file), or {promise} while asked
const infos = new Map();

const intOrNull = (v) => (Number.isInteger(v) && v > 0 ? v : null);

/**
 * A File from the server as the client keeps it; null if it is not one. Its thumbnail
 * is always at `${url}/thumb` (docs/protocol.md §9).
 */
function validFile(raw, url) {
  if (!raw || typeof raw !== 'object' || typeof raw.name !== 'string' || !Number.isInteger(raw.size)) return null;
  const width = intOrNull(raw.width);
  const height = intOrNull(raw.height);
  return {
    url,
    name: raw.name || 'file',
    size: raw.size,
    mime: typeof raw.mime === 'string' ? raw.mime : 'application/octet-stream',
    width: width && height ? width : null,
    height: width && height ? height : null,
  };
}

/** Our own upload's File: known without asking. */
export function rememberFile(raw) {
  const file = typeof raw?.url === 'string' ? validFile(raw, raw.url) : null;
  if (file) infos.set(file.url, { file });
  return file;
}

/** The File of a URL if it is known already (undefined: not yet, null: gone). */
export const knownFile = (url) => infos.get(url)?.file;

/**
 * The File of a URL: null when the server has none, undefined when it could not be
 * asked (not remembered: the next drawing asks again).
 */
export function fileInfo(url) {
  const known = infos.get(url);
  if (known) return known.promise ?? Promise.resolve(known.file);
  const promise = api('GET', `${url}/info`, undefined, { anonymous: true }).then(
    (raw) => {
      const file = validFile(raw, url);
      infos.set(url, { file });
      return file;
    },
    (err) => {
      if (err.status !== 404) {
        infos.delete(url);
        return undefined;
      }
      infos.set(url, { file: null });
      return null;
    },
  );
  infos.set(url, { promise });
  return promise;
}

const carriesFile = (msg) => (msg.kind === 'Image' || msg.kind === 'File') && !msg.recalled && isFileUrl(msg.content);

/**
 * Asks for the Files of these messages (MessageInfos or the store's) at once, so that
 * they draw with their sizes known and nothing moves later; resolves when all are
 * answered, or after PREFETCH_WAIT_MS at most.
 */
export function prefetchFiles(messages) {
  const asked = messages.filter(carriesFile).map((msg) => fileInfo(msg.content));
  if (!asked.length) return Promise.resolve();
  const waited = new Promise((resolve) => setTimeout(resolve, PREFETCH_WAIT_MS));
  return Promise.race([Promise.all(asked), waited]);
}

const SIZE_UNITS = ['byte', 'kilobyte', 'megabyte', 'gigabyte'];

/** "820 bytes", "12.3 kB", "4.1 MB". */
export function formatSize(bytes) {
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < SIZE_UNITS.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return new Intl.NumberFormat(undefined, {
    style: 'unit',
    unit: SIZE_UNITS[unit],
    unitDisplay: unit ? 'short' : 'long',
    maximumFractionDigits: unit && value < 10 ? 1 : 0,
  }).format(value);
}

const OOXML = 'application/vnd.openxmlformats-officedocument.';
const ODF = 'application/vnd.oasis.opendocument.';
const TYPE_NAMES = {
  'application/pdf': 'PDF document',
  'application/zip': 'ZIP archive',
  'application/epub+zip': 'EPUB book',
  'text/plain': 'Text',
  [`${OOXML}wordprocessingml.document`]: 'Word document',
  [`${OOXML}spreadsheetml.sheet`]: 'Excel spreadsheet',
  [`${OOXML}presentationml.presentation`]: 'PowerPoint presentation',
  [`${ODF}text`]: 'OpenDocument text',
  [`${ODF}spreadsheet`]: 'OpenDocument spreadsheet',
  [`${ODF}presentation`]: 'OpenDocument presentation',
};

/** What kind of file it is, in words ("PDF document", "PNG image"). */
export function typeName(file) {
  if (TYPE_NAMES[file.mime]) return TYPE_NAMES[file.mime];
  if (file.mime.startsWith('image/')) return `${file.mime.slice(6).toUpperCase()} image`;
  return file.mime;
}

/** The extension as a short badge ("PDF", "DOCX"), or "FILE". */
export function extensionOf(name) {
  const dot = name.lastIndexOf('.');
  const ext = dot > 0 ? name.slice(dot + 1) : '';
  return /^[a-z0-9]{1,5}$/i.test(ext) ? ext.toUpperCase() : 'FILE';
}

/** The size a picture shows at in the timeline: its thumbnail's, never enlarged. */
export function thumbSize(file) {
  const scale = Math.min(1, THUMB_PX / Math.max(file.width, file.height));
  return { width: Math.max(1, Math.round(file.width * scale)), height: Math.max(1, Math.round(file.height * scale)) };
}
