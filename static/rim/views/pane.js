// The conversation pane: opening and closing a conversation, its header, the message
// list with its scroll position (stuck to the bottom unless the reader scrolled up),
// older pages on demand, and jumping to a message (a reply's original, a search
// result). Keeps the drawn list in step with the store's messages.

import { avatarEl } from '../lib/avatar.js';
import { byId, h, isNarrow, toast } from '../lib/dom.js';
import {
  convAvatarUrl,
  convName,
  isMine,
  orderedMessages,
  setLoaded,
  setOpen,
  setView,
  state,
  subscribe,
} from '../lib/store.js';
import { loadMembers } from '../sync/conversations.js';
import { loadHistoryPage } from '../sync/history.js';
import { readOpenConversation } from '../sync/receipts.js';
import { autosize, focusComposer, switchDraft } from './composer.js';
import { openLightbox } from './lightbox.js';
import { messageEl, refreshMessageEl } from './message.js';
import { stopEditing } from './message-edit.js';
import { closeMenu } from './message-menu.js';

const NEAR_BOTTOM_PX = 80;
const HIGHLIGHT_MS = 2000;
// A message further back than this many pages is not searched for.
const MAX_PAGES_BACK = 20;

const pane = {
  stickToBottom: true,
  drawn: new WeakMap(), // message -> its <li>, while shown
  jumping: false, // a jump to a message is loading pages
};

const openConv = () => state.convs.get(state.openGid);

/** Narrow screens show the list or the conversation ('list' / 'chat'). */
function showView(view) {
  setView(view);
  byId('app').dataset.view = view;
  if (view === 'chat') {
    autosize();
    readOpenConversation();
  }
}

export async function openConversation(gid, { focus = true } = {}) {
  const conv = state.convs.get(gid);
  if (!conv) return;
  switchDraft(openConv(), conv);
  stopEditing();
  setOpen(gid);
  byId('pane-empty').hidden = true;
  byId('chat').hidden = false;
  renderChatHeader(conv);
  showView('chat');
  autosize();
  renderMessages(conv);
  scrollToBottom();
  if (focus) {
    if (isNarrow()) byId('chat-name').focus();
    else focusComposer();
  }
  if (!conv.loaded) {
    setLoaded(conv, true);
    const rows = await loadHistoryPage(conv, 1);
    if (rows && state.openGid === conv.gid) {
      renderMessages(conv);
      scrollToBottom();
    }
  }
  if (conv.group.mode === 2 || !conv.peer) loadMembers(conv).catch(() => {});
  readOpenConversation();
}

export function closeConversation() {
  if (state.openGid !== null) setOpen(null);
  byId('chat').hidden = true;
  byId('pane-empty').hidden = false;
  byId('msg-list').replaceChildren();
  showView('list');
}

function renderChatHeader(conv) {
  if (state.openGid !== conv.gid) return;
  const name = convName(conv);
  byId('chat-name').textContent = name;
  byId('chat-avatar').replaceChildren(avatarEl(name, convAvatarUrl(conv)));
  let sub = '';
  if (conv.group.mode === 1) sub = conv.peer ? `@${conv.peer.account}` : 'Direct message';
  else if (conv.members) sub = `${conv.members.length} member${conv.members.length === 1 ? '' : 's'}`;
  else sub = 'Group';
  byId('chat-sub').textContent = sub;
  byId('info-btn').setAttribute('aria-label', conv.group.mode === 2 ? 'Group details' : 'Conversation details');
}

// ---------------------------------------------------------------------------
// Messages

const drawOptions = (conv) => ({
  onImageLoad: () => {
    if (pane.stickToBottom) scrollToBottom();
  },
  onOpenImage: openLightbox,
  onJump: (msgId) => jumpToMessage(conv, msgId, 'The original message is not available.'),
});

function drawMessage(conv, msg, prev) {
  const el = messageEl(conv, msg, prev, drawOptions(conv));
  pane.drawn.set(msg, el);
  return el;
}

const shownEl = (msg) => {
  const el = pane.drawn.get(msg);
  return el?.isConnected ? el : null;
};

function renderMessages(conv, { keepScroll = false } = {}) {
  closeMenu();
  const box = byId('messages');
  const list = byId('msg-list');
  const fromBottom = box.scrollHeight - box.scrollTop;
  const ordered = orderedMessages(conv);
  list.replaceChildren(...ordered.map((msg, i) => drawMessage(conv, msg, ordered[i - 1])));
  const older = byId('load-older');
  older.hidden = !conv.hasOlder;
  older.disabled = false;
  older.textContent = 'Load older messages';
  if (!ordered.length) {
    list.append(
      h(
        'li',
        { class: 'msg-empty', 'data-testid': 'msg-empty' },
        conv.loaded ? 'No messages yet. Say hello!' : 'Loading messages…',
      ),
    );
  }
  if (keepScroll) box.scrollTop = box.scrollHeight - fromBottom;
}

/** The drawn element of the first message after `index` that is shown (pending ones stay last). */
function nextShown(ordered, index) {
  for (const msg of ordered.slice(index + 1)) {
    const el = shownEl(msg);
    if (el) return el;
  }
  return null;
}

/** Inserts one message at its place; a message from someone else below the fold shows "New messages". */
function insertMessage(conv, msg, ordered) {
  const list = byId('msg-list');
  list.querySelector('.msg-empty')?.remove();
  const index = ordered.indexOf(msg);
  const el = drawMessage(conv, msg, ordered[index - 1]);
  const stick = nearBottom();
  list.insertBefore(el, nextShown(ordered, index));
  if (isMine(msg) || stick) scrollToBottom();
  else byId('jump-latest').hidden = false;
}

/** A message was added, confirmed or changed in the store: bring the open pane in step. */
function syncMessage(conv, msg, ordered) {
  const el = shownEl(msg);
  const index = ordered.indexOf(msg);
  if (!el) {
    if (index >= 0) insertMessage(conv, msg, ordered);
    return;
  }
  if (conv.messages.has(msg.id) && conv.messages.get(msg.id) !== msg) {
    el.remove(); // confirmed, but history had brought it meanwhile: that copy shows
    return;
  }
  refreshMessageEl(el, conv, msg, drawOptions(conv));
  if (index >= 0 && nextShown(ordered, index) !== el.nextElementSibling) {
    // a confirmed message moves from among the pending ones to its id's place
    el.remove();
    insertMessage(conv, msg, ordered);
  }
}

function onMessages(messages) {
  const conv = openConv();
  if (!conv) return;
  const ordered = orderedMessages(conv);
  const changed = new Set();
  for (const msg of messages) {
    if (msg.gid !== conv.gid) continue;
    syncMessage(conv, msg, ordered);
    if (msg.id !== null) changed.add(msg.id);
  }
  // replies quote what their original says now (edited, recalled)
  for (const msg of ordered) {
    const el = changed.has(msg.replyTo) ? shownEl(msg) : null;
    if (el) refreshMessageEl(el, conv, msg, drawOptions(conv));
  }
}

function nearBottom() {
  const box = byId('messages');
  return box.scrollHeight - box.scrollTop - box.clientHeight < NEAR_BOTTOM_PX;
}

function scrollToBottom() {
  const box = byId('messages');
  box.scrollTop = box.scrollHeight;
  pane.stickToBottom = true;
  byId('jump-latest').hidden = true;
}

/**
 * Shows a message of the open conversation: older pages load until it is there, then
 * it scrolls into view, takes the focus and is highlighted for a moment. `missing`:
 * what to say if it cannot be found.
 */
async function jumpToMessage(conv, msgId, missing) {
  if (pane.jumping) return;
  pane.jumping = true;
  try {
    for (let pages = 0; !conv.messages.has(msgId) && conv.hasOlder && pages < MAX_PAGES_BACK; pages += 1) {
      const rows = await loadHistoryPage(conv, conv.nextPage);
      if (!rows || state.openGid !== conv.gid) return;
      renderMessages(conv, { keepScroll: true });
    }
  } finally {
    pane.jumping = false;
  }
  const msg = conv.messages.get(msgId);
  const el = msg && state.openGid === conv.gid ? shownEl(msg) : null;
  if (!el) {
    toast(missing, 'error');
    return;
  }
  el.scrollIntoView({ block: 'center' });
  pane.stickToBottom = nearBottom();
  el.tabIndex = -1;
  el.focus({ preventScroll: true });
  el.classList.remove('highlight');
  void el.offsetWidth; // restarts the animation on a second jump
  el.classList.add('highlight');
  setTimeout(() => el.classList.remove('highlight'), HIGHLIGHT_MS);
}

/** Opens a conversation at one of its messages (a search result). */
export async function showMessage(gid, msgId) {
  const conv = state.convs.get(gid);
  if (!conv) {
    toast('That conversation is not in your list.', 'error');
    return;
  }
  if (state.openGid !== gid) await openConversation(gid, { focus: false });
  else showView('chat');
  await jumpToMessage(conv, msgId, 'The message is not available.');
}

async function loadOlder() {
  const conv = openConv();
  if (!conv) return;
  const button = byId('load-older');
  button.disabled = true;
  button.textContent = 'Loading…';
  const rows = await loadHistoryPage(conv, conv.nextPage);
  if (!rows) {
    button.disabled = false;
    button.textContent = 'Load older messages';
  } else if (state.openGid === conv.gid) {
    renderMessages(conv, { keepScroll: true });
  }
}

// ---------------------------------------------------------------------------
// Store subscriptions and controls

function onHistory(convs) {
  const conv = openConv();
  if (!conv || !convs.includes(conv)) return;
  const stick = nearBottom();
  renderMessages(conv, { keepScroll: true });
  if (stick) scrollToBottom();
}

/** Senders' names became known: group messages show them. */
function onUsers(uids) {
  const conv = openConv();
  if (!conv || conv.group.mode !== 2) return;
  const changed = new Set(uids);
  if ([...conv.messages.values()].some((msg) => changed.has(msg.uid))) renderMessages(conv, { keepScroll: true });
}

export function initPane(onBack) {
  subscribe('message', onMessages);
  subscribe('history', onHistory);
  subscribe('users', onUsers);
  subscribe('conv', (convs) => {
    const conv = openConv();
    if (conv && convs.includes(conv)) renderChatHeader(conv);
  });
  subscribe('open', () => {
    if (state.openGid === null && !byId('chat').hidden) closeConversation();
  });

  byId('back-btn').addEventListener('click', () => {
    showView('list');
    onBack();
  });
  byId('load-older').addEventListener('click', loadOlder);
  byId('jump-latest').addEventListener('click', scrollToBottom);
  byId('messages').addEventListener('scroll', () => {
    pane.stickToBottom = nearBottom();
    if (pane.stickToBottom) byId('jump-latest').hidden = true;
  });
}
