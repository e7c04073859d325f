// Message content by kind: how each kind is drawn inside a bubble and how it reads as
// one line of preview. A new kind is one more entry in KINDS. Everything is built as
// DOM nodes: content never becomes HTML. Image and File messages carrying a file the
// server stores draw as file-content.js says; an Image of any other URL (rim's v1
// clients send those) shows the picture at that URL.

import { h } from './dom.js';
import { renderFileCard, renderUploadedImage } from './file-content.js';
import { isFileUrl } from './files.js';
import { safeHttpUrl } from './url.js';

const LINK_RE = /\bhttps?:\/\/[^\s<>"'`]+[^\s<>"'`.,;:!?)\]]/g;
const RICH_RE = /\*\*([^*\n]+?)\*\*|\*([^*\s][^*\n]*?)\*|`([^`\n]+)`|(\bhttps?:\/\/[^\s<>"'`]+[^\s<>"'`.,;:!?)\]])/g;

function linkEl(text) {
  const href = safeHttpUrl(text);
  if (!href) return document.createTextNode(text);
  return h('a', { href, target: '_blank', rel: 'noopener noreferrer nofollow' }, text);
}

function appendMatches(parent, text, re, build) {
  let last = 0;
  for (const m of text.matchAll(re)) {
    if (m.index > last) parent.append(text.slice(last, m.index));
    parent.append(build(m));
    last = m.index + m[0].length;
  }
  if (last < text.length) parent.append(text.slice(last));
}

/** Plain text: kept verbatim (CSS keeps line breaks), URLs become links. */
function renderText(text) {
  const frag = document.createDocumentFragment();
  appendMatches(frag, text, LINK_RE, (m) => linkEl(m[0]));
  return frag;
}

/** RichText: a tiny safe subset (**bold**, *italic*, `code`, links, line breaks). */
function renderRich(text) {
  const frag = document.createDocumentFragment();
  text.split('\n').forEach((line, i) => {
    if (i > 0) frag.append(h('br'));
    appendMatches(frag, line, RICH_RE, (m) => {
      if (m[1] !== undefined) return h('strong', null, m[1]);
      if (m[2] !== undefined) return h('em', null, m[2]);
      if (m[3] !== undefined) return h('code', null, m[3]);
      return linkEl(m[4]);
    });
  });
  return frag;
}

/** An image by URL; an unsafe URL is shown as the text it is. */
function renderImage(text, options = {}) {
  if (isFileUrl(text)) return renderUploadedImage(text, options);
  const { onImageLoad } = options;
  const src = safeHttpUrl(text);
  if (!src) return text;
  const img = h('img', {
    src,
    alt: 'Image',
    loading: 'lazy',
    decoding: 'async',
    referrerpolicy: 'no-referrer',
    'data-testid': 'msg-image',
  });
  if (onImageLoad) img.addEventListener('load', onImageLoad);
  img.addEventListener('error', () => img.replaceWith(h('span', { class: 'img-broken' }, 'Image unavailable')));
  return h('a', { href: src, target: '_blank', rel: 'noopener noreferrer nofollow' }, img);
}

const flatten = (text) => text.replace(/\s+/g, ' ').trim();

const KINDS = {
  Text: { render: renderText, preview: flatten },
  RichText: {
    render: renderRich,
    preview: (text) =>
      flatten(text.replace(RICH_RE, (all, bold, italic, code, link) => bold ?? italic ?? code ?? link ?? all)),
  },
  Image: { render: renderImage, preview: () => 'Photo' },
  File: {
    // a File message always carries an uploaded file's URL; any other shows as text
    render: (text) => (isFileUrl(text) ? renderFileCard(text) : renderText(text)),
    preview: () => 'File',
  },
};

// a kind this client does not know yet still shows, as plain text
const kindOf = (msg) => KINDS[msg.kind] || KINDS.Text;

/** The content of a message as nodes (or a string) for its bubble. */
export const renderContent = (msg, options) => kindOf(msg).render(msg.content, options);

/** What a recalled message shows instead of its content. */
export const RECALLED_TEXT = 'Message recalled';

/** One line of text for lists, notifications and announcements. */
export const plainPreview = (msg) => (msg.recalled ? RECALLED_TEXT : kindOf(msg).preview(msg.content));
