// One message in the conversation pane. messageEl draws it from the store's message;
// each part (day separator, sender, bubble with content and meta, failure line) is its
// own function so that later parts (a quote, an "edited" mark, reactions) slot in.

import { renderContent } from '../lib/content.js';
import { h } from '../lib/dom.js';
import { isMine, userName } from '../lib/store.js';
import { clock, dayKey, dayLabel, parseTime } from '../lib/time.js';
import { retrySend } from '../sync/outbox.js';

const STATUS_TEXT = { pending: 'Sending', sent: 'Sent', read: 'Read', failed: 'Not sent' };
const STATUS_MARK = { pending: '◷', sent: '✓', read: '✓✓', failed: '!' };

/**
 * prev: the message shown just above (for the day separator and sender grouping).
 * onImageLoad: called when a picture in it has loaded (the pane keeps its scroll).
 */
export function messageEl(conv, msg, prev, { onImageLoad } = {}) {
  const mine = isMine(msg);
  const newDay = !prev || dayKey(prev.createTime) !== dayKey(msg.createTime);
  const showSender = !mine && conv.group.mode === 2 && (newDay || !prev || prev.uid !== msg.uid);
  return h(
    'li',
    {
      class: `msg ${mine ? 'mine' : 'theirs'}${showSender ? ' first' : ''}`,
      'data-testid': 'msg',
      'data-msg-id': msg.id ?? null,
      'data-client-msg-id': msg.clientMsgId,
      'data-uid': msg.uid,
      'data-kind': msg.kind,
    },
    newDay ? h('div', { class: 'day', role: 'separator' }, dayLabel(msg.createTime)) : null,
    showSender ? h('div', { class: 'sender', 'data-testid': 'msg-sender' }, userName(msg.uid)) : null,
    h(
      'div',
      { class: 'bubble' },
      h('span', { class: 'sr-only' }, mine ? 'You: ' : `${userName(msg.uid)}: `),
      contentEl(msg, onImageLoad),
      metaEl(msg, mine),
    ),
    msg.status === 'failed' ? failedEl(msg) : null,
  );
}

function contentEl(msg, onImageLoad) {
  return h(
    'div',
    { class: `content kind-${msg.kind}`, 'data-testid': 'msg-content' },
    renderContent(msg, { onImageLoad }),
  );
}

function metaEl(msg, mine) {
  const time = parseTime(msg.createTime);
  return h(
    'span',
    { class: 'meta' },
    time ? h('time', { datetime: msg.createTime, title: time.toLocaleString() }, clock(time)) : null,
    mine ? statusEl(msg) : null,
  );
}

function statusEl(msg) {
  return h(
    'span',
    {
      class: `status ${msg.status}`,
      'data-testid': 'msg-status',
      'data-status': msg.status,
      role: 'img',
      'aria-label': STATUS_TEXT[msg.status],
      title: STATUS_TEXT[msg.status],
    },
    STATUS_MARK[msg.status],
  );
}

function failedEl(msg) {
  return h(
    'div',
    { class: 'msg-error', 'data-testid': 'msg-failed' },
    `Not sent: ${msg.error || 'error'} `,
    h('button', { type: 'button', class: 'link-btn', onclick: () => retrySend(msg) }, 'Retry'),
  );
}

/** Brings a drawn message up to date after its id or status changed, keeping the node. */
export function updateMessageEl(el, msg) {
  if (msg.id !== null) el.dataset.msgId = String(msg.id);
  el.querySelector('.status')?.replaceWith(statusEl(msg));
  el.querySelector('.msg-error')?.remove();
  if (msg.status === 'failed') el.append(failedEl(msg));
}
