// An uploaded picture full size, in a modal dialog over the page: Escape, the close
// button or a click anywhere but its download link closes it, and the focus goes
// back to the thumbnail that opened it.

import { byId } from '../lib/dom.js';

let opener = null; // the element to focus again when the dialog closes

/** file: a File (files.js) of a picture; from: the thumbnail's link. */
export function openLightbox(file, from) {
  opener = from;
  const img = byId('lightbox-image');
  img.width = file.width;
  img.height = file.height;
  img.alt = file.name;
  img.src = file.url;
  byId('lightbox-name').textContent = file.name;
  const link = byId('lightbox-download');
  link.href = file.url;
  link.download = file.name;
  link.setAttribute('aria-label', `Download ${file.name}`);
  byId('lightbox').showModal();
  byId('lightbox-close').focus();
}

export function initLightbox() {
  const dialog = byId('lightbox');
  dialog.addEventListener('click', (event) => {
    if (!event.target.closest('#lightbox-download')) dialog.close();
  });
  dialog.addEventListener('close', () => {
    byId('lightbox-image').removeAttribute('src');
    if (opener?.isConnected) opener.focus();
    opener = null;
  });
}
