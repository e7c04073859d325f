// One message in the conversation pane. messageEl draws it from the store's message;
// each part (day separator, sender, the row of bubble and actions button, reactions,
// failure line) is its own function, and refreshMessageEl redraws the parts that a
// change (confirmed, recalled, edited, reacted to) may alter, keeping the element.
//
// opts, from the pane: onImageLoad() when a picture has loaded (the pane keeps its
// scroll), onOpenImage(file, opener) to show an uploaded picture full size,
// onJump(msgId) when a reply's quote is chosen.

import { RECALLED_TEXT, renderContent } from '../lib/content.js';
import { h } from '../lib/dom.js';
import { isChangeable } from '../lib/rules.js';
import { isMine, userName } from '../lib/store.js';
import { clock, dayKey, dayLabel, parseTime } from '../lib/time.js';
import { retrySend } from '../sync/outbox.js';
import { editorEl, isEditing, stopEditing } from './message-edit.js';
import { menuButton } from './message-menu.js';
import { reactionsEl } from './reactions.js';
import { quoteEl } from './reply.js';

const STATUS_TEXT = { pending: 'Sending', sent: 'Sent', read: 'Read', failed: 'Not sent' };
const STATUS_MARK = { pending: '◷', sent: '✓', read: '✓✓', failed: '!' };

// What each drawn content element shows: a redraw keeps the element (and its loaded
// picture) unless that changed.
const shownContent = new WeakMap(); // content element -> contentKey
const contentKey = (msg) => JSON.stringify([msg.kind, msg.content, msg.recalled]);

/** prev: the message shown just above (for the day separator and sender grouping). */
export function messageEl(conv, msg, prev, opts = {}) {
  const mine = isMine(msg);
  const newDay = !prev || dayKey(prev.createTime) !== dayKey(msg.createTime);
  const showSender = !mine && conv.group.mode === 2 && (newDay || !prev || prev.uid !== msg.uid);
  const el = h(
    'li',
    {
      class: `msg ${mine ? 'mine' : 'theirs'}${showSender ? ' first' : ''}${msg.recalled ? ' recalled' : ''}`,
      'data-testid': 'msg',
      'data-msg-id': msg.id ?? null,
      'data-client-msg-id': msg.clientMsgId,
      'data-uid': msg.uid,
      'data-kind': msg.kind,
    },
    newDay ? h('div', { class: 'day', role: 'separator' }, dayLabel(msg.createTime)) : null,
    showSender ? h('div', { class: 'sender', 'data-testid': 'msg-sender' }, userName(msg.uid)) : null,
  );
  el.append(...changingParts(el, conv, msg, opts));
  return el;
}

/** The parts a change may alter, in their order. */
function changingParts(el, conv, msg, opts) {
  const redraw = () => refreshMessageEl(el, conv, msg, opts);
  return [
    rowEl(conv, msg, opts, redraw),
    reactionsEl(conv, msg),
    msg.status === 'failed' ? failedEl(msg) : null,
  ].filter(Boolean);
}

/** The bubble, and beside it the button of the message's actions menu. */
function rowEl(conv, msg, opts, redraw) {
  const mine = isMine(msg);
  return h(
    'div',
    { class: 'msg-row' },
    h(
      'div',
      { class: 'bubble' },
      h('span', { class: 'sr-only' }, mine ? 'You: ' : `${userName(msg.uid)}: `),
      quoteEl(conv, msg, opts.onJump),
      isEditing(msg) ? editorEl(conv, msg, redraw) : contentEl(msg, opts),
      metaEl(msg, mine),
    ),
    isChangeable(msg) ? menuButton(conv, msg, redraw) : null,
  );
}

function contentEl(msg, { onImageLoad, onOpenImage }) {
  const el = msg.recalled
    ? h('div', { class: 'content recalled-note', 'data-testid': 'msg-recalled' }, RECALLED_TEXT)
    : h(
        'div',
        { class: `content kind-${msg.kind}`, 'data-testid': 'msg-content' },
        renderContent(msg, { onImageLoad, onOpenImage }),
      );
  shownContent.set(el, contentKey(msg));
  return el;
}

function metaEl(msg, mine) {
  const time = parseTime(msg.createTime);
  return h(
    'span',
    { class: 'meta' },
    msg.editTime && !msg.recalled ? editedEl(msg.editTime) : null,
    time ? h('time', { datetime: msg.createTime, title: time.toLocaleString() }, clock(time)) : null,
    mine ? statusEl(msg) : null,
  );
}

function editedEl(editTime) {
  const when = parseTime(editTime);
  const title = when ? `Edited ${when.toLocaleString()}` : 'Edited';
  return h('span', { class: 'edited', 'data-testid': 'msg-edited', 'data-edit-time': editTime, title }, 'edited');
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

/** A selector for the focused control inside a message, to focus its successor after a redraw. */
function focusedControl(el) {
  const active = document.activeElement;
  if (!active || active === el || !el.contains(active) || !active.dataset.testid) return null;
  const { testid, emoji } = active.dataset;
  return `[data-testid="${CSS.escape(testid)}"]${emoji ? `[data-emoji="${CSS.escape(emoji)}"]` : ''}`;
}

/**
 * Brings a drawn message up to date after a change, keeping the element (and the
 * focus inside it). A message being edited keeps its editor, unless it was recalled.
 */
export function refreshMessageEl(el, conv, msg, opts = {}) {
  if (msg.id !== null) el.dataset.msgId = String(msg.id);
  el.classList.toggle('recalled', msg.recalled);
  if (msg.recalled && isEditing(msg)) stopEditing();
  const focused = focusedControl(el);
  const row = el.querySelector(':scope > .msg-row');
  const [freshRow, ...below] = changingParts(el, conv, msg, opts);
  if (isEditing(msg) && row.querySelector('.msg-edit')) {
    row.querySelector('.status')?.replaceWith(statusEl(msg)); // the editor keeps what is typed
  } else {
    const [shown, drawn] = [row.querySelector('.content'), freshRow.querySelector('.content')];
    if (shown && drawn && shownContent.get(shown) === contentKey(msg)) drawn.replaceWith(shown);
    row.replaceWith(freshRow);
  }
  for (const part of el.querySelectorAll(':scope > .reactions, :scope > .msg-error')) part.remove();
  el.append(...below);
  if (focused) el.querySelector(focused)?.focus();
}
