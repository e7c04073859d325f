// The composer: the message box (Enter sends, Shift+Enter breaks the line), the rich
// text toggle, the image-by-URL dialog, each conversation's unsent draft, the reply
// being written (Escape cancels it) and the Typing events while text is typed.

import { byId, formError, isNarrow, toast } from '../lib/dom.js';
import { setDraft, setReplyTo, setRichMode, state } from '../lib/store.js';
import { safeHttpUrl } from '../lib/url.js';
import { sendMessage } from '../sync/outbox.js';
import { typingIn } from '../sync/typing.js';
import { cancelReply } from './reply.js';

const MAX_CONTENT_BYTES = 65_536;
const MAX_HEIGHT_PX = 160;

const input = () => byId('composer-input');
const utf8Length = (text) => new TextEncoder().encode(text).length;
const openConv = () => state.convs.get(state.openGid);

function submitComposer() {
  const conv = openConv();
  const text = input().value;
  if (!conv || !text.trim()) return;
  if (utf8Length(text) > MAX_CONTENT_BYTES) {
    toast('This message is too long to send.', 'error');
    return;
  }
  sendMessage(conv, state.richMode ? 'RichText' : 'Text', text, conv.replyTo?.id ?? null);
  setReplyTo(conv, null);
  input().value = '';
  setDraft(conv, '');
  autosize();
  input().focus();
}

/** Grows the box with its text, up to a limit. */
export function autosize() {
  const box = input();
  box.style.height = '';
  if (!box.offsetParent) return; // hidden: measured again when shown
  box.style.height = `${Math.min(box.scrollHeight + (box.offsetHeight - box.clientHeight), MAX_HEIGHT_PX)}px`;
}

/** Switching conversations: the left one keeps what was typed, the new one shows its own. */
export function switchDraft(previous, conv) {
  if (previous && previous !== conv) setDraft(previous, input().value);
  input().value = conv.draft;
}

export function focusComposer() {
  input().focus();
}

export function clearComposer() {
  input().value = '';
}

function openImageDialog() {
  const form = byId('image-form');
  form.reset();
  formError(form).textContent = '';
  byId('image-dialog').showModal();
  byId('image-url').focus();
}

function submitImage(event) {
  event.preventDefault();
  const url = safeHttpUrl(byId('image-url').value);
  const conv = openConv();
  if (!url) {
    formError(byId('image-form')).textContent = 'Enter an http:// or https:// image address.';
    return;
  }
  byId('image-dialog').close();
  if (conv) {
    sendMessage(conv, 'Image', url, conv.replyTo?.id ?? null);
    setReplyTo(conv, null);
  }
  focusComposer();
}

export function initComposer() {
  byId('composer').addEventListener('submit', (e) => {
    e.preventDefault();
    submitComposer();
  });
  input().addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      submitComposer();
    } else if (e.key === 'Escape') {
      if (!cancelReply() && isNarrow()) byId('back-btn').click();
    }
  });
  input().addEventListener('input', () => {
    autosize();
    const conv = openConv();
    if (conv && input().value.trim()) typingIn(conv);
  });
  byId('rich-btn').addEventListener('click', (e) => {
    setRichMode(!state.richMode);
    e.currentTarget.setAttribute('aria-pressed', String(state.richMode));
    byId('rich-hint').hidden = !state.richMode;
  });
  byId('image-btn').addEventListener('click', openImageDialog);
  byId('image-form').addEventListener('submit', submitImage);
}
