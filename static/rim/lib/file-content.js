// How a message carrying an uploaded file draws (the Image and File kinds of
// content.js, when the content is a URL the server gave a file): a picture as its
// thumbnail at its known size, which opens full size; anything else as a card with the
// file's name, size and type and a download link. The File may still be on its way
// (files.js asks the server once): the element is drawn at once and filled in then.
//
// options, from the pane: onImageLoad() when a picture's size or pixels arrived (the
// pane keeps its scroll), onOpenImage(file, opener) to show a picture full size.

import { h } from './dom.js';
import { extensionOf, fileInfo, formatSize, knownFile, thumbSize, typeName } from './files.js';

/**
 * Runs fill(file, later) now if the File is known, else when the server answered (see
 * fileInfo); `later` says the element may have been drawn meanwhile.
 */
function withFile(url, fill) {
  const known = knownFile(url);
  if (known !== undefined) fill(known, false);
  else fileInfo(url).then((file) => fill(file, true));
}

/** An uploaded picture: its thumbnail, a link to the full picture that opens it in place. */
export function renderUploadedImage(url, { onImageLoad, onOpenImage } = {}) {
  const img = h('img', {
    src: `${url}/thumb`,
    alt: 'Image',
    decoding: 'async',
    referrerpolicy: 'no-referrer',
    'data-testid': 'msg-thumb',
  });
  const link = h('a', { href: url, class: 'thumb', target: '_blank', rel: 'noopener', 'data-testid': 'thumb-link' });
  link.append(img);
  let file = null;
  link.addEventListener('click', (event) => {
    if (!file || !onOpenImage || event.ctrlKey || event.metaKey || event.shiftKey) return;
    event.preventDefault();
    onOpenImage(file, link);
  });
  img.addEventListener('load', () => onImageLoad?.());
  img.addEventListener('error', () => link.replaceWith(h('span', { class: 'img-broken' }, 'Image unavailable')));
  withFile(url, (known, later) => {
    if (!known?.width) return;
    file = known;
    const { width, height } = thumbSize(known);
    img.width = width;
    img.height = height;
    img.alt = known.name;
    link.setAttribute('aria-label', `${known.name}, open full size`);
    link.classList.add('sized');
    if (later) onImageLoad?.();
  });
  return link;
}

/** Any other uploaded file: a card with its name, size and type, and a download link. */
export function renderFileCard(url) {
  const name = h('span', { class: 'file-name', 'data-testid': 'file-name' }, 'File');
  const meta = h('span', { class: 'file-meta', 'data-testid': 'file-meta' }, 'Loading…');
  const badge = h('span', { class: 'file-badge', 'aria-hidden': 'true' }, 'FILE');
  const card = h('div', { class: 'file-card', 'data-testid': 'file-card' }, badge);
  card.append(h('span', { class: 'file-text' }, name, meta));
  withFile(url, (file) => {
    if (file === null) {
      meta.textContent = 'This file is no longer available.';
      return;
    }
    // file undefined: the server could not be asked; the link still works
    name.textContent = file?.name ?? 'File';
    badge.textContent = file ? extensionOf(file.name) : 'FILE';
    meta.textContent = file ? `${formatSize(file.size)} · ${typeName(file)}` : '';
    card.append(downloadLink(url, file?.name));
  });
  return card;
}

function downloadLink(url, filename) {
  return h(
    'a',
    {
      href: url,
      download: filename,
      class: 'file-download',
      'aria-label': `Download ${filename ?? 'the file'}`,
      'data-testid': 'file-download',
    },
    'Download',
  );
}
