// Attaching files to the open conversation: the composer's attach button (a file
// picker), files dropped anywhere on the conversation, pictures pasted into the
// composer; and the list of uploads above the message box, each with its progress
// and a cancel button, or the reason it was refused and a button to dismiss it.

import { byId, h } from '../lib/dom.js';
import { state, subscribe } from '../lib/store.js';
import { attachFiles, cancelUpload } from '../sync/uploads.js';

const openConv = () => state.convs.get(state.openGid);
const rows = new Map(); // upload -> its <li>, while listed

function attach(files) {
  const conv = openConv();
  if (conv && files.length) attachFiles(conv, files);
}

// ---------------------------------------------------------------------------
// The list of uploads (the open conversation's)

function rowEl(upload) {
  const close = () => {
    cancelUpload(upload);
    byId('composer-input').focus();
  };
  return h(
    'li',
    { class: 'upload', 'data-testid': 'upload' },
    h('span', { class: 'upload-name', 'data-testid': 'upload-name' }, upload.name),
    h('progress', {
      class: 'upload-progress',
      max: 1,
      value: 0,
      'aria-label': `Uploading ${upload.name}`,
      'data-testid': 'upload-progress',
    }),
    h('span', { class: 'upload-percent', 'aria-hidden': 'true' }),
    h(
      'button',
      {
        type: 'button',
        class: 'icon-btn upload-cancel',
        'aria-label': `Cancel upload of ${upload.name}`,
        title: 'Cancel upload',
        'data-testid': 'upload-cancel',
        onclick: close,
      },
      '×',
    ),
  );
}

/** Brings a row up to date in place (a focused cancel button keeps the focus). */
function updateRow(el, upload) {
  el.dataset.status = upload.status;
  if (el.classList.contains('failed')) return;
  if (upload.status === 'failed') {
    showRefusal(el, upload);
    return;
  }
  el.querySelector('progress').value = upload.progress;
  el.querySelector('.upload-percent').textContent =
    upload.status === 'queued' ? 'Waiting' : `${Math.floor(upload.progress * 100)}%`;
}

/** The progress gives way to the reason, announced once; the button now dismisses. */
function showRefusal(el, upload) {
  el.classList.add('failed');
  el.querySelector('progress').remove();
  const cancel = el.querySelector('.upload-cancel');
  el.querySelector('.upload-percent').replaceWith(
    h('span', { class: 'upload-error', role: 'alert', 'data-testid': 'upload-error' }, `Not sent: ${upload.error}`),
  );
  cancel.setAttribute('aria-label', `Dismiss ${upload.name}`);
  cancel.title = 'Dismiss';
}

function renderUploads() {
  const list = byId('upload-list');
  const shown = state.uploads.filter((u) => u.gid === state.openGid);
  for (const [upload, el] of rows) {
    if (!shown.includes(upload)) {
      el.remove();
      rows.delete(upload);
    }
  }
  for (const upload of shown) {
    if (!rows.has(upload)) {
      rows.set(upload, rowEl(upload));
      list.append(rows.get(upload));
    }
    updateRow(rows.get(upload), upload);
  }
  list.hidden = shown.length === 0;
}

// ---------------------------------------------------------------------------
// Ways in: the picker, drag and drop, paste

const carriesFiles = (event) => event.dataTransfer?.types.includes('Files');

function initDrop() {
  // Files dropped anywhere else would make the browser leave the page to show them.
  for (const type of ['dragover', 'drop']) {
    window.addEventListener(type, (event) => {
      if (!carriesFiles(event) || event.defaultPrevented) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = 'none';
    });
  }
  const zone = byId('chat');
  const leave = () => zone.classList.remove('dropping');
  zone.addEventListener('dragover', (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = 'copy';
    zone.classList.add('dropping');
  });
  zone.addEventListener('dragleave', (event) => {
    if (!zone.contains(event.relatedTarget)) leave();
  });
  zone.addEventListener('drop', (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    leave();
    attach([...event.dataTransfer.files]);
  });
}

/**
 * The files of a paste: a copied picture or file. Text copied from an office document
 * comes with a picture of itself too, and pastes as text.
 */
function pastedFiles(event) {
  const data = event.clipboardData;
  if (!data || data.types.includes('text/plain')) return [];
  return [...data.items].filter((item) => item.kind === 'file').map((item) => item.getAsFile()).filter(Boolean);
}

export function initAttach() {
  const picker = byId('attach-input');
  byId('attach-btn').addEventListener('click', () => picker.click());
  picker.addEventListener('change', () => {
    attach([...picker.files]);
    picker.value = '';
    byId('composer-input').focus();
  });
  initDrop();
  byId('composer-input').addEventListener('paste', (event) => {
    const files = pastedFiles(event);
    if (!files.length) return; // text pastes as text
    event.preventDefault();
    attach(files);
  });
  subscribe('uploads', renderUploads);
  subscribe('open', renderUploads);
}
