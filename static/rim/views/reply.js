// Replies: the quote of the original above a reply in the timeline (a button that
// jumps to the original), and the bar above the composer while a reply is written
// (× or Escape cancels it).

import { plainPreview } from '../lib/content.js';
import { byId, h } from '../lib/dom.js';
import { isMine, setReplyTo, state, subscribe, userName } from '../lib/store.js';

const PREVIEW_CHARS = 120;

const senderOf = (msg) => (isMine(msg) ? 'You' : userName(msg.uid));
const short = (text) => (text.length > PREVIEW_CHARS ? `${text.slice(0, PREVIEW_CHARS - 1)}…` : text);

/** The quote above a reply; its original may not be loaded (older history) yet. */
export function quoteEl(conv, msg, onJump) {
  if (msg.replyTo === null) return null;
  const original = conv.messages.get(msg.replyTo);
  const sender = original ? senderOf(original) : 'Earlier message';
  const text = original ? short(plainPreview(original)) : 'Show the original message';
  return h(
    'button',
    {
      type: 'button',
      class: `quote${original?.recalled ? ' recalled' : ''}`,
      title: 'Show the original message',
      'aria-label': `Reply to ${original ? `${sender}: ${text}` : 'an earlier message'}. Show the original.`,
      'data-testid': 'msg-quote',
      'data-reply-to': msg.replyTo,
      onclick: () => onJump?.(msg.replyTo),
    },
    h('span', { class: 'quote-sender', 'data-testid': 'quote-sender' }, sender),
    h('span', { class: 'quote-text', 'data-testid': 'quote-text' }, text),
  );
}

const openConv = () => state.convs.get(state.openGid);

function renderReplyBar() {
  const conv = openConv();
  const target = conv?.replyTo;
  const bar = byId('reply-bar');
  bar.hidden = !target;
  if (!target) return;
  byId('reply-sender').textContent = `Replying to ${senderOf(target)}`;
  byId('reply-text').textContent = short(plainPreview(target));
}

/** Cancels the open conversation's reply; false if there was none. */
export function cancelReply() {
  const conv = openConv();
  if (!conv?.replyTo) return false;
  setReplyTo(conv, null);
  return true;
}

export function initReply() {
  subscribe('reply', renderReplyBar);
  subscribe('open', renderReplyBar);
  subscribe('message', (messages) => {
    if (messages.includes(openConv()?.replyTo)) renderReplyBar(); // the original was edited or recalled
  });
  byId('reply-cancel').addEventListener('click', () => {
    cancelReply();
    byId('composer-input').focus();
  });
}
