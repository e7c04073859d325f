// rim web client: plain modern JavaScript, no dependencies, no build step.
//
// It speaks the wire contract of /work/shared/PROTOCOL.md: the REST API under /api/
// (every answer is the {ok, code, msg, data} envelope) and the WebSocket at /ws
// (client events Login/Msg/Read/Heart/Logout/Ack, one MsgAck per event, Msg/Read pushes).
//
// Security rule for the whole client (this file and lib/): user content reaches the
// DOM only as text nodes (textContent / Node.append(string)) or as validated attribute
// values. Nothing assigns innerHTML/outerHTML or inserts HTML strings.

import { api, ApiError, configureApi, isServerRefusal, q } from './lib/api.js';
import { avatarEl } from './lib/avatar.js';
import { plainPreview, renderContent } from './lib/content.js';
import { announce, byId, h, isNarrow, NARROW_QUERY, toast } from './lib/dom.js';
import { clock, dayKey, dayLabel, listTime, nowText, parseTime } from './lib/time.js';
import { safeHttpUrl } from './lib/url.js';

const PAGE_SIZE = 30;
const CHAT_LIST_PAGE = 100;
const CHAT_LIST_MAX_PAGES = 20;
const HEART_MS = 30_000;
const ACK_TIMEOUT_MS = 20_000;
const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 10_000;
const POLL_MS = 30_000;
const MAX_CONTENT_BYTES = 65_536;
const STORE_TOKEN = 'rim.token';
const STORE_USER = 'rim.user';
const STORE_PEER_READ = 'rim.peerRead.';
const EXPIRED = 'Your session has expired. Please sign in again.';

// ---------------------------------------------------------------------------
// Small helpers

function newClientMsgId() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

const utf8Length = (text) => new TextEncoder().encode(text).length;

// ---------------------------------------------------------------------------
// State

const state = {
  token: null,
  me: null,
  users: new Map(), // uid -> User
  convs: new Map(), // gid -> conversation
  openGid: null,
  view: 'list', // narrow screens: 'list' or 'chat'
  tab: 'chats',
  filter: '',
  friends: [],
  requests: [],
  sentRequests: new Set(),
  outbox: new Map(), // clientMsgId -> pending own message
  unknownPushes: [], // pushes for groups not (yet) in the list
  acked: new Map(), // gid -> highest msgId acknowledged as delivered
  richMode: false,
};

function newConv(group) {
  return {
    gid: group.id,
    group,
    peer: null, // one-to-one: the other user
    members: null, // [{role, user}]
    last: null, // newest confirmed message
    unread: 0,
    needsRead: false,
    readSent: 0,
    peerRead: 0, // highest msgId another member has read
    messages: new Map(), // id -> message (only once loaded)
    pending: [], // own messages not yet acked, in send order
    loaded: false,
    nextPage: 2,
    hasOlder: false,
    draft: '',
  };
}

function fromInfo(m) {
  return {
    id: m.id,
    gid: m.gid,
    uid: m.uid,
    kind: m.kind,
    content: typeof m.content === 'string' ? m.content : '',
    clientMsgId: m.client_msg_id ?? null,
    createTime: m.createTime ?? null,
    status: 'sent',
  };
}

function fromPush(b) {
  return {
    id: b.msgId,
    gid: b.gid,
    uid: b.uid,
    kind: b.kind,
    content: typeof b.content === 'string' ? b.content : '',
    clientMsgId: b.clientMsgId ?? null,
    createTime: b.createTime ?? nowText(),
    status: 'sent',
  };
}

function rememberUser(user) {
  if (user && Number.isInteger(user.id)) state.users.set(user.id, user);
}

const userName = (uid) => {
  const u = state.users.get(uid);
  return u ? u.name || u.account : `User ${uid}`;
};

const isMine = (msg) => state.me && msg.uid === state.me.id;

function convName(conv) {
  if (conv.group.mode === 1) {
    if (conv.peer) return conv.peer.name || conv.peer.account;
    return conv.group.name || 'Direct message';
  }
  return conv.group.name || 'Group';
}

function convAvatarUrl(conv) {
  return conv.group.mode === 1 ? conv.peer?.avatar : conv.group.avatar;
}

function newestOf(conv) {
  const pending = conv.pending[conv.pending.length - 1];
  return pending || conv.last;
}

function sortedConvs() {
  const key = (c) => (c.pending.length ? Number.MAX_SAFE_INTEGER : c.last ? c.last.id : 0);
  return [...state.convs.values()].sort((a, b) => key(b) - key(a) || b.gid - a.gid);
}

function isConvVisible(conv) {
  return (
    conv &&
    state.openGid === conv.gid &&
    document.visibilityState === 'visible' &&
    !byId('app').hidden &&
    (!isNarrow() || state.view === 'chat')
  );
}

// peer read marks survive a reload (the REST API has no read receipts)
function loadPeerRead() {
  try {
    return JSON.parse(localStorage.getItem(STORE_PEER_READ + state.me.id) || '{}') || {};
  } catch {
    return {};
  }
}

function savePeerRead() {
  const map = {};
  for (const conv of state.convs.values()) if (conv.peerRead) map[conv.gid] = conv.peerRead;
  try {
    localStorage.setItem(STORE_PEER_READ + state.me.id, JSON.stringify(map));
  } catch {
    // storage full or disabled: read marks just will not survive a reload
  }
}

// ---------------------------------------------------------------------------
// WebSocket connection: login, acks, heartbeat, reconnect with backoff

class NetError extends Error {}

const net = {
  enabled: false,
  ws: null,
  loggedIn: false,
  attempt: 0,
  retryAt: 0,
  retryTimer: 0,
  tickTimer: 0,
  heartTimer: 0,
  pending: new Map(), // clientMsgId -> {resolve, reject, timer, ws}
  everOnline: false,
};

function wsUrl() {
  const path = document.body.dataset.wsPath || '/ws';
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${path}`;
}

function setBanner(kind) {
  const banner = byId('banner');
  const text = byId('banner-text');
  const retry = byId('banner-retry');
  banner.dataset.state = kind;
  retry.hidden = kind !== 'offline';
  if (kind === 'online') {
    text.textContent = 'Online';
  } else if (kind === 'connecting') {
    text.textContent = net.everOnline ? 'Reconnecting…' : 'Connecting…';
  } else if (!net.enabled) {
    text.textContent = 'Offline';
  } else {
    const secs = Math.max(1, Math.ceil((net.retryAt - Date.now()) / 1000));
    text.textContent = `Offline — reconnecting in ${secs} s`;
  }
  document.body.dataset.connection = kind;
}

function connect() {
  clearTimeout(net.retryTimer);
  clearInterval(net.tickTimer);
  if (!net.enabled || net.ws) return;
  setBanner('connecting');
  let ws;
  try {
    ws = new WebSocket(wsUrl());
  } catch {
    scheduleReconnect();
    return;
  }
  net.ws = ws;
  ws.addEventListener('open', () => onSocketOpen(ws));
  ws.addEventListener('message', (event) => onSocketFrame(ws, event.data));
  ws.addEventListener('close', () => onSocketClose(ws));
}

function disconnect() {
  net.enabled = false;
  clearTimeout(net.retryTimer);
  clearInterval(net.tickTimer);
  clearInterval(net.heartTimer);
  const ws = net.ws;
  if (ws) {
    onSocketClose(ws);
    try {
      ws.close(1000, 'logout');
    } catch {
      // already closed
    }
  }
  setBanner('offline');
}

function scheduleReconnect() {
  const base = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** net.attempt);
  const delay = Math.min(BACKOFF_CAP_MS, Math.round(base * (0.8 + Math.random() * 0.4)));
  net.attempt += 1;
  net.retryAt = Date.now() + delay;
  clearTimeout(net.retryTimer);
  clearInterval(net.tickTimer);
  net.retryTimer = setTimeout(connect, delay);
  net.tickTimer = setInterval(() => setBanner('offline'), 1000);
  setBanner('offline');
}

function retryNow() {
  if (!net.enabled || net.ws) return;
  net.attempt = 0;
  connect();
}

/** Sends one client event; resolves with its MsgAck (whatever its content). */
function request(event, fields) {
  const ws = net.ws;
  if (!ws || ws.readyState !== WebSocket.OPEN || !state.me) {
    return Promise.reject(new NetError('offline'));
  }
  if (event !== 'Login' && event !== 'Heart' && !net.loggedIn) {
    return Promise.reject(new NetError('not logged in'));
  }
  const clientMsgId = fields.clientMsgId || newClientMsgId();
  const body = {
    kind: 'Text',
    uid: state.me.id,
    gid: null,
    content: '',
    msgId: null,
    ...fields,
    clientMsgId,
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      net.pending.delete(clientMsgId);
      reject(new NetError('timeout'));
      // an unanswered event means the connection is not healthy: start over
      if (net.ws === ws) ws.close(4000, 'ack timeout');
    }, ACK_TIMEOUT_MS);
    net.pending.set(clientMsgId, { resolve, reject, timer, ws });
    try {
      ws.send(JSON.stringify({ event, body }));
    } catch (err) {
      clearTimeout(timer);
      net.pending.delete(clientMsgId);
      reject(new NetError(String(err)));
    }
  });
}

async function onSocketOpen(ws) {
  if (ws !== net.ws) return;
  let ack;
  try {
    ack = await request('Login', { content: state.token });
  } catch {
    return; // the close handler schedules the retry
  }
  if (ws !== net.ws) return;
  if (ack.content !== 'Ok') {
    if (ack.content === 'auth_failed') {
      leaveApp(EXPIRED);
    } else {
      toast(`Could not log in to the message service: ${ack.detail || ack.content}`, 'error');
      ws.close(4001, 'login failed');
    }
    return;
  }
  net.loggedIn = true;
  net.attempt = 0;
  const reconnected = net.everOnline;
  net.everOnline = true;
  setBanner('online');
  clearInterval(net.heartTimer);
  net.heartTimer = setInterval(sendHeart, HEART_MS);
  onLoggedIn(reconnected);
}

function onSocketFrame(ws, data) {
  if (ws !== net.ws || typeof data !== 'string') return;
  let frame;
  try {
    frame = JSON.parse(data);
  } catch {
    return;
  }
  if (!frame || typeof frame !== 'object') return;
  if (typeof frame.event === 'string') {
    onPush(frame.event, frame.body && typeof frame.body === 'object' ? frame.body : {});
    return;
  }
  if (frame.kind === 'Ack' && typeof frame.clientMsgId === 'string') {
    const waiter = net.pending.get(frame.clientMsgId);
    if (!waiter) return;
    net.pending.delete(frame.clientMsgId);
    clearTimeout(waiter.timer);
    waiter.resolve(frame);
  }
}

function onSocketClose(ws) {
  if (ws !== net.ws) return;
  net.ws = null;
  net.loggedIn = false;
  clearInterval(net.heartTimer);
  for (const [id, waiter] of net.pending) {
    if (waiter.ws !== ws) continue;
    clearTimeout(waiter.timer);
    net.pending.delete(id);
    waiter.reject(new NetError('disconnected'));
  }
  if (net.enabled) scheduleReconnect();
  else setBanner('offline');
}

function sendHeart() {
  request('Heart', {}).catch(() => {});
}

function onLoggedIn(reconnected) {
  for (const msg of state.outbox.values()) if (msg.status === 'pending') transmit(msg);
  flushAcks();
  refreshConversations({ reloadOpen: reconnected });
  refreshContacts();
}

// ---------------------------------------------------------------------------
// Delivered (Ack) and read (Read) watermarks

const ackQueue = new Map();
let ackTimer = 0;

function scheduleAck(gid, msgId) {
  if (!Number.isInteger(gid) || !Number.isInteger(msgId)) return;
  if ((state.acked.get(gid) || 0) >= msgId) return;
  ackQueue.set(gid, Math.max(ackQueue.get(gid) || 0, msgId));
  if (!ackTimer) ackTimer = setTimeout(flushAcks, 200);
}

function flushAcks() {
  clearTimeout(ackTimer);
  ackTimer = 0;
  if (!net.loggedIn) return;
  for (const [gid, msgId] of [...ackQueue]) {
    ackQueue.delete(gid);
    if ((state.acked.get(gid) || 0) >= msgId) continue;
    request('Ack', { gid, msgId })
      .then((ack) => {
        if (ack.content === 'Ok') {
          state.acked.set(gid, Math.max(state.acked.get(gid) || 0, msgId));
        } else if (ack.content === 'rate_limited') {
          setTimeout(() => scheduleAck(gid, msgId), 1000);
        }
      })
      .catch(() => scheduleAck(gid, msgId));
  }
}

const readTimers = new Map();

function scheduleRead(conv) {
  if (readTimers.has(conv.gid)) return;
  readTimers.set(
    conv.gid,
    setTimeout(() => {
      readTimers.delete(conv.gid);
      sendRead(conv);
    }, 150),
  );
}

async function sendRead(conv) {
  if (!isConvVisible(conv) || !conv.last) return;
  const newest = conv.last.id;
  if (!(conv.unread > 0 || conv.needsRead) || newest <= conv.readSent) {
    if (conv.unread) {
      conv.unread = 0;
      renderConvList();
    }
    return;
  }
  if (!net.loggedIn) return; // retried after the next login
  const previous = conv.readSent;
  conv.readSent = newest;
  conv.needsRead = false;
  conv.unread = 0;
  renderConvList();
  try {
    const ack = await request('Read', { gid: conv.gid, msgId: newest });
    if (ack.content === 'Ok') {
      // a Read raises the delivered watermark too
      state.acked.set(conv.gid, Math.max(state.acked.get(conv.gid) || 0, newest));
    } else {
      conv.readSent = previous;
      if (ack.content === 'rate_limited') {
        conv.needsRead = true;
        setTimeout(() => scheduleRead(conv), 1000);
      }
    }
  } catch {
    conv.readSent = previous;
    conv.needsRead = true;
  }
}

function readOpenConversation() {
  const conv = state.convs.get(state.openGid);
  if (conv && isConvVisible(conv)) scheduleRead(conv);
}

// ---------------------------------------------------------------------------
// Pushes

function onPush(event, body) {
  if (event === 'Msg') {
    if (!Number.isInteger(body.msgId) || !Number.isInteger(body.gid)) return;
    const msg = fromPush(body);
    scheduleAck(msg.gid, msg.id);
    applyIncoming(msg);
  } else if (event === 'Read') {
    onReadPush(body);
  }
}

function applyIncoming(msg) {
  const conv = state.convs.get(msg.gid);
  if (!conv) {
    state.unknownPushes.push(msg);
    scheduleConvRefresh();
    return;
  }
  if (conv.messages.has(msg.id)) return; // duplicate (at-least-once offline sync)

  // our own message, sent from this tab, echoed before its ack arrived
  const own = isMine(msg) && msg.clientMsgId && state.outbox.get(msg.clientMsgId);
  if (own && own.gid === conv.gid) {
    confirmSent(own, msg.id);
    return;
  }

  const isNew = !conv.last || msg.id > conv.last.id;
  if (!isMine(msg)) markPeerRead(conv, msg.id);
  if (conv.loaded) {
    msg.status = isMine(msg) && msg.id <= conv.peerRead ? 'read' : 'sent';
    conv.messages.set(msg.id, msg);
    if (state.openGid === conv.gid) insertMessageEl(conv, msg, { live: true });
  }
  if (!isNew) return;
  conv.last = msg;
  if (isMine(msg)) {
    conv.unread = 0; // the server raises the sender's own watermarks
  } else if (isConvVisible(conv)) {
    conv.needsRead = true;
    scheduleRead(conv);
    announce(`${userName(msg.uid)}: ${plainPreview(msg)}`);
  } else {
    conv.unread += 1;
    announce(`New message from ${userName(msg.uid)} in ${convName(conv)}`);
  }
  if (!state.users.has(msg.uid)) fetchUser(msg.uid);
  renderConvList();
}

function onReadPush(body) {
  const conv = state.convs.get(body.gid);
  if (!conv || !Number.isInteger(body.msgId)) return;
  if (state.me && body.uid === state.me.id) {
    // read on another of my devices
    if (conv.last && body.msgId >= conv.last.id && conv.unread) {
      conv.unread = 0;
      renderConvList();
    }
    return;
  }
  markPeerRead(conv, body.msgId);
}

/**
 * Another member has read the group up to msgId: from a Read push, or implied by a
 * message of theirs (sending raises the sender's own read watermark, and the server
 * announces no Read for that).
 */
function markPeerRead(conv, msgId) {
  if (!(msgId > conv.peerRead)) return;
  conv.peerRead = msgId;
  savePeerRead();
  for (const msg of conv.messages.values()) {
    if (isMine(msg) && msg.id <= conv.peerRead && msg.status === 'sent') {
      msg.status = 'read';
      updateStatusEl(msg);
    }
  }
}

function markReadByOthers(conv, messages) {
  let newest = 0;
  for (const msg of messages) if (!isMine(msg) && msg.id > newest) newest = msg.id;
  markPeerRead(conv, newest);
}

const userFetches = new Set();

async function fetchUser(uid) {
  if (userFetches.has(uid)) return;
  userFetches.add(uid);
  try {
    rememberUser(await api('GET', `/api/user/get?uid=${q(uid)}`));
    renderConvList();
    const conv = state.convs.get(state.openGid);
    if (conv && conv.group.mode === 2) renderMessages(conv, { keepScroll: true });
  } catch {
    // the name stays "User N"
  } finally {
    userFetches.delete(uid);
  }
}

// ---------------------------------------------------------------------------
// Conversation list

let refreshing = null;
let refreshAgain = false;
let refreshReloadOpen = false;
let convRefreshTimer = 0;

function scheduleConvRefresh() {
  if (!convRefreshTimer) {
    convRefreshTimer = setTimeout(() => {
      convRefreshTimer = 0;
      refreshConversations();
    }, 250);
  }
}

function refreshConversations({ reloadOpen = false } = {}) {
  refreshReloadOpen ||= reloadOpen;
  if (refreshing) {
    refreshAgain = true;
    return refreshing;
  }
  refreshing = (async () => {
    do {
      refreshAgain = false;
      const reload = refreshReloadOpen;
      refreshReloadOpen = false;
      try {
        await loadConversations();
        if (reload) await reloadOpenConversation();
      } catch (err) {
        if (isServerRefusal(err) && state.me) toast(err.message, 'error');
      }
    } while (refreshAgain && state.me);
  })().finally(() => {
    refreshing = null;
  });
  return refreshing;
}

async function fetchChatList() {
  const all = [];
  for (let page = 1; page <= CHAT_LIST_MAX_PAGES; page += 1) {
    const rows = await api('POST', '/api/message/chat/list', {
      uid: state.me.id,
      page,
      size: CHAT_LIST_PAGE,
    });
    all.push(...(rows || []));
    if (!rows || rows.length < CHAT_LIST_PAGE) break;
  }
  return all;
}

async function loadConversations() {
  const me = state.me;
  const [groups, chats] = await Promise.all([api('GET', `/api/group/get?uid=${q(me.id)}`), fetchChatList()]);
  if (state.me !== me) return;
  const peerRead = loadPeerRead();
  const seen = new Set();
  const upsert = (group) => {
    seen.add(group.id);
    let conv = state.convs.get(group.id);
    if (!conv) {
      conv = newConv(group);
      conv.peerRead = peerRead[group.id] || 0;
      state.convs.set(group.id, conv);
    }
    conv.group = group;
    return conv;
  };
  for (const group of groups || []) upsert(group);
  for (const row of chats) {
    const conv = upsert(row.group);
    rememberUser(row.user);
    if (row.group.mode === 1 && row.user && row.user.id !== me.id) conv.peer = row.user;
    if (!row.msg) continue;
    const last = fromInfo(row.msg);
    if (!isMine(last)) markPeerRead(conv, last.id);
    if (!conv.last || last.id >= conv.last.id) {
      conv.last = last;
      conv.unread = last.id <= conv.readSent ? 0 : row.unread || 0;
    }
  }
  for (const gid of [...state.convs.keys()]) if (!seen.has(gid)) dropConversation(gid);

  await Promise.all(
    [...state.convs.values()].filter((c) => c.group.mode === 1 && !c.peer).map((c) => loadMembers(c).catch(() => {})),
  );

  const buffered = state.unknownPushes.splice(0);
  renderConvList();
  for (const msg of buffered) if (state.convs.has(msg.gid)) applyIncoming(msg);
  const open = state.convs.get(state.openGid);
  if (open) {
    renderChatHeader(open);
    if (isConvVisible(open)) scheduleRead(open);
  }
}

async function loadMembers(conv) {
  const rows = await api('GET', `/api/group/user/get?gid=${q(conv.gid)}`);
  conv.members = rows || [];
  for (const row of conv.members) rememberUser(row.user);
  if (conv.group.mode === 1) {
    const other = conv.members.find((row) => row.user && row.user.id !== state.me.id);
    if (other) conv.peer = other.user;
  }
  return conv.members;
}

function dropConversation(gid) {
  state.convs.delete(gid);
  if (state.openGid === gid) closeConversation();
}

function renderConvList() {
  const list = byId('conv-list');
  const focused = document.activeElement?.closest?.('#conv-list [data-gid]')?.dataset.gid;
  const filter = state.filter.toLowerCase();
  const convs = sortedConvs().filter((c) => !filter || convName(c).toLowerCase().includes(filter));
  list.replaceChildren(...convs.map(convItem));
  byId('conv-empty').hidden = state.convs.size > 0;
  if (focused) list.querySelector(`[data-gid="${CSS.escape(focused)}"]`)?.focus();

  let total = 0;
  for (const conv of state.convs.values()) total += conv.unread;
  const count = byId('chats-count');
  count.hidden = total === 0;
  count.textContent = total > 99 ? '99+' : String(total);
  count.setAttribute('aria-label', `${total} unread`);
  document.title = total ? `(${total}) rim` : 'rim';
}

function convItem(conv) {
  const name = convName(conv);
  const newest = newestOf(conv);
  let preview = '';
  if (newest) {
    const who = isMine(newest) ? 'You: ' : conv.group.mode === 2 ? `${userName(newest.uid)}: ` : '';
    preview = who + plainPreview(newest);
  } else {
    preview = conv.group.mode === 2 ? 'New group' : 'No messages yet';
  }
  const unread = conv.unread;
  const open = conv.gid === state.openGid;
  return h(
    'li',
    null,
    h(
      'button',
      {
        type: 'button',
        class: `conv${open ? ' active' : ''}${unread ? ' has-unread' : ''}`,
        'aria-current': open ? 'true' : null,
        'data-testid': 'conv-item',
        'data-gid': conv.gid,
        'data-mode': conv.group.mode,
        onclick: () => openConversation(conv.gid),
      },
      avatarEl(name, convAvatarUrl(conv)),
      h(
        'span',
        { class: 'conv-body' },
        h(
          'span',
          { class: 'conv-top' },
          h('span', { class: 'conv-name', 'data-testid': 'conv-name' }, name),
          newest ? h('time', { class: 'conv-time', datetime: newest.createTime }, listTime(newest.createTime)) : null,
        ),
        h(
          'span',
          { class: 'conv-bottom' },
          h('span', { class: 'conv-preview', 'data-testid': 'conv-preview' }, preview),
          unread
            ? h(
                'span',
                { class: 'badge', 'data-testid': 'unread-badge', 'aria-label': `${unread} unread` },
                unread > 99 ? '99+' : String(unread),
              )
            : null,
        ),
      ),
    ),
  );
}

// ---------------------------------------------------------------------------
// Conversation pane

function setView(view) {
  state.view = view;
  byId('app').dataset.view = view;
  if (view === 'chat') {
    autosize();
    readOpenConversation();
  }
}

async function openConversation(gid, { focus = true } = {}) {
  const conv = state.convs.get(gid);
  if (!conv) return;
  const input = byId('composer-input');
  const previous = state.convs.get(state.openGid);
  if (previous && previous !== conv) previous.draft = input.value;

  state.openGid = gid;
  byId('pane-empty').hidden = true;
  byId('chat').hidden = false;
  input.value = conv.draft;
  renderChatHeader(conv);
  renderConvList();
  setView('chat');
  autosize();
  renderMessages(conv);
  scrollToBottom();
  if (focus) {
    if (isNarrow()) byId('chat-name').focus();
    else input.focus();
  }
  if (!conv.loaded) {
    conv.loaded = true;
    await loadHistoryPage(conv, 1);
  }
  if (conv.group.mode === 2 || !conv.peer) loadMembers(conv).then(() => renderChatHeader(conv)).catch(() => {});
  readOpenConversation();
}

function closeConversation() {
  state.openGid = null;
  byId('chat').hidden = true;
  byId('pane-empty').hidden = false;
  byId('msg-list').replaceChildren();
  setView('list');
  renderConvList();
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

async function loadHistoryPage(conv, page) {
  let rows;
  try {
    rows = await api('POST', '/api/message/history', { gid: conv.gid, uid: state.me.id, page, size: PAGE_SIZE });
  } catch (err) {
    if (page === 1) conv.loaded = false;
    if (err.status === 403 || err.status === 404) {
      toast('You are no longer a member of this conversation.', 'error');
      dropConversation(conv.gid);
      renderConvList();
    } else if (isServerRefusal(err)) {
      toast(err.message, 'error');
    }
    return null;
  }
  rows = rows || [];
  markReadByOthers(conv, rows.map((row) => row.msg));
  for (const row of rows) {
    rememberUser(row.user);
    const msg = fromInfo(row.msg);
    if (conv.messages.has(msg.id)) continue;
    msg.status = isMine(msg) && msg.id <= conv.peerRead ? 'read' : 'sent';
    conv.messages.set(msg.id, msg);
  }
  if (page === 1) conv.nextPage = 2;
  else conv.nextPage = page + 1;
  conv.hasOlder = rows.length >= PAGE_SIZE;
  const newest = rows[rows.length - 1];
  if (newest && (!conv.last || newest.msg.id > conv.last.id)) {
    conv.last = fromInfo(newest.msg);
    renderConvList();
  }
  if (state.openGid === conv.gid) {
    renderMessages(conv, { keepScroll: page > 1 });
    if (page === 1) scrollToBottom();
  }
  return rows;
}

/** After a reconnect: fill whatever the offline sync did not cover. */
async function reloadOpenConversation() {
  for (const conv of state.convs.values()) {
    if (conv.gid !== state.openGid && conv.loaded) {
      conv.loaded = false;
      conv.messages.clear();
    }
  }
  const conv = state.convs.get(state.openGid);
  if (!conv || !conv.loaded) return;
  const known = Math.max(0, ...conv.messages.keys());
  const rows = await api('POST', '/api/message/history', {
    gid: conv.gid,
    uid: state.me.id,
    page: 1,
    size: PAGE_SIZE,
  }).catch(() => null);
  if (!rows || state.openGid !== conv.gid) return;
  const gap = rows.length >= PAGE_SIZE && rows[0].msg.id > known;
  if (gap) {
    conv.messages.clear();
    conv.nextPage = 2;
    conv.hasOlder = true;
  }
  markReadByOthers(conv, rows.map((row) => row.msg));
  for (const row of rows) {
    rememberUser(row.user);
    const msg = fromInfo(row.msg);
    if (conv.messages.has(msg.id)) continue;
    msg.status = isMine(msg) && msg.id <= conv.peerRead ? 'read' : 'sent';
    conv.messages.set(msg.id, msg);
    if (!conv.last || msg.id > conv.last.id) conv.last = msg;
  }
  const stick = nearBottom();
  renderMessages(conv, { keepScroll: true });
  if (stick) scrollToBottom();
  renderConvList();
  readOpenConversation();
}

function orderedMessages(conv) {
  const confirmed = [...conv.messages.values()].sort((a, b) => a.id - b.id);
  return confirmed.concat(conv.pending);
}

function renderMessages(conv, { keepScroll = false } = {}) {
  const box = byId('messages');
  const list = byId('msg-list');
  const fromBottom = box.scrollHeight - box.scrollTop;
  const ordered = orderedMessages(conv);
  list.replaceChildren(...ordered.map((msg, i) => messageEl(conv, msg, ordered[i - 1])));
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

function messageEl(conv, msg, prev) {
  const mine = isMine(msg);
  const newDay = !prev || dayKey(prev.createTime) !== dayKey(msg.createTime);
  const showSender = !mine && conv.group.mode === 2 && (newDay || !prev || prev.uid !== msg.uid);
  const time = parseTime(msg.createTime);

  const content = h(
    'div',
    { class: `content kind-${msg.kind}`, 'data-testid': 'msg-content' },
    renderContent(msg, {
      onImageLoad: () => {
        if (stickToBottom) scrollToBottom();
      },
    }),
  );

  const meta = h(
    'span',
    { class: 'meta' },
    time ? h('time', { datetime: msg.createTime, title: time.toLocaleString() }, clock(time)) : null,
    mine ? statusEl(msg) : null,
  );

  const item = h(
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
      content,
      meta,
    ),
    msg.status === 'failed' ? failedEl(msg) : null,
  );
  msg.el = item;
  return item;
}

const STATUS_TEXT = { pending: 'Sending', sent: 'Sent', read: 'Read', failed: 'Not sent' };
const STATUS_MARK = { pending: '◷', sent: '✓', read: '✓✓', failed: '!' };

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

function updateStatusEl(msg) {
  const el = msg.el;
  if (!el || !el.isConnected) return;
  if (msg.id !== null) el.dataset.msgId = String(msg.id);
  el.querySelector('.status')?.replaceWith(statusEl(msg));
  el.querySelector('.msg-error')?.remove();
  if (msg.status === 'failed') el.append(failedEl(msg));
}

/** Inserts one message into the open pane at its place (pending ones stay last). */
function insertMessageEl(conv, msg, { live = false } = {}) {
  const list = byId('msg-list');
  list.querySelector('.msg-empty')?.remove();
  const ordered = orderedMessages(conv);
  const index = ordered.indexOf(msg);
  const el = messageEl(conv, msg, ordered[index - 1]);
  const next = ordered.slice(index + 1).find((m) => m.el && m.el.isConnected);
  const stick = nearBottom();
  list.insertBefore(el, next ? next.el : null);
  if (isMine(msg) || stick) scrollToBottom();
  else if (live) byId('jump-latest').hidden = false;
}

let stickToBottom = true;

function nearBottom() {
  const box = byId('messages');
  return box.scrollHeight - box.scrollTop - box.clientHeight < 80;
}

function scrollToBottom() {
  const box = byId('messages');
  box.scrollTop = box.scrollHeight;
  stickToBottom = true;
  byId('jump-latest').hidden = true;
}

async function loadOlder() {
  const conv = state.convs.get(state.openGid);
  if (!conv) return;
  const button = byId('load-older');
  button.disabled = true;
  button.textContent = 'Loading…';
  const rows = await loadHistoryPage(conv, conv.nextPage);
  if (!rows) {
    button.disabled = false;
    button.textContent = 'Load older messages';
  }
}

// ---------------------------------------------------------------------------
// Sending

function sendMessage(conv, kind, content) {
  const msg = {
    id: null,
    gid: conv.gid,
    uid: state.me.id,
    kind,
    content,
    clientMsgId: newClientMsgId(),
    createTime: nowText(),
    status: 'pending',
    error: null,
  };
  conv.pending.push(msg);
  state.outbox.set(msg.clientMsgId, msg);
  if (state.openGid === conv.gid) insertMessageEl(conv, msg);
  renderConvList();
  transmit(msg);
}

async function transmit(msg) {
  if (msg.sending || !net.loggedIn) return; // resent after the next login
  msg.sending = true;
  let ack;
  try {
    ack = await request('Msg', {
      kind: msg.kind,
      gid: msg.gid,
      content: msg.content,
      clientMsgId: msg.clientMsgId, // kept on retry: the server dedupes by it
    });
  } catch {
    return; // still pending: resent after the next login
  } finally {
    msg.sending = false;
  }
  if (ack.content === 'Ok' && Number.isInteger(ack.serverMsgId)) {
    confirmSent(msg, ack.serverMsgId);
  } else if (ack.content === 'rate_limited') {
    setTimeout(() => transmit(msg), 1000);
  } else {
    failSend(msg, ack.detail || ack.content);
  }
}

function confirmSent(msg, id) {
  const conv = state.convs.get(msg.gid);
  state.outbox.delete(msg.clientMsgId);
  if (!conv) return;
  conv.pending = conv.pending.filter((m) => m !== msg);
  msg.id = id;
  msg.status = id <= conv.peerRead ? 'read' : 'sent';
  msg.error = null;
  if (conv.messages.has(id)) {
    msg.el?.remove();
  } else if (conv.loaded) {
    conv.messages.set(id, msg);
  }
  if (!conv.last || id > conv.last.id) conv.last = msg;
  conv.unread = 0;
  if (state.openGid === conv.gid && msg.el?.isConnected) {
    updateStatusEl(msg);
    const ordered = orderedMessages(conv);
    const index = ordered.indexOf(msg);
    const next = ordered.slice(index + 1).find((m) => m.el && m.el.isConnected);
    if ((next ? next.el : null) !== msg.el.nextElementSibling) {
      msg.el.remove();
      insertMessageEl(conv, msg);
    }
  }
  renderConvList();
}

function failSend(msg, reason) {
  msg.status = 'failed';
  msg.error = reason;
  updateStatusEl(msg);
  toast(`Message not sent: ${reason}`, 'error');
}

function retrySend(msg) {
  msg.status = 'pending';
  msg.error = null;
  updateStatusEl(msg);
  transmit(msg);
}

function submitComposer() {
  const conv = state.convs.get(state.openGid);
  const input = byId('composer-input');
  const text = input.value;
  if (!conv || !text.trim()) return;
  if (utf8Length(text) > MAX_CONTENT_BYTES) {
    toast('This message is too long to send.', 'error');
    return;
  }
  sendMessage(conv, state.richMode ? 'RichText' : 'Text', text);
  input.value = '';
  conv.draft = '';
  autosize();
  input.focus();
}

function autosize() {
  const input = byId('composer-input');
  input.style.height = '';
  if (!input.offsetParent) return; // hidden: measured again when shown
  input.style.height = `${Math.min(input.scrollHeight + (input.offsetHeight - input.clientHeight), 160)}px`;
}

// ---------------------------------------------------------------------------
// Contacts: search, requests, friends

async function refreshContacts() {
  if (!state.me) return;
  try {
    const [friends, requests] = await Promise.all([
      api('GET', '/api/friend/list?status=1'),
      api('GET', '/api/friend/list?status=0'),
    ]);
    state.friends = friends || [];
    state.requests = requests || [];
    for (const u of state.friends) rememberUser(u);
    for (const u of state.requests) rememberUser(u);
    renderContacts();
  } catch (err) {
    if (isServerRefusal(err) && state.me) toast(err.message, 'error');
  }
}

function personRow(user, testid, ...actions) {
  const name = user.name || user.account;
  return h(
    'li',
    { class: 'person', 'data-testid': testid, 'data-uid': user.id },
    avatarEl(name, user.avatar),
    h(
      'span',
      { class: 'person-text' },
      h('span', { class: 'person-name' }, name),
      h('span', { class: 'person-account' }, `@${user.account}`),
    ),
    h('span', { class: 'person-actions' }, ...actions),
  );
}

function renderContacts() {
  const requests = byId('request-list');
  requests.replaceChildren(
    ...state.requests.map((user) =>
      personRow(
        user,
        'request-item',
        h(
          'button',
          {
            type: 'button',
            class: 'btn primary small',
            'data-testid': 'request-accept',
            'aria-label': `Accept ${user.name || user.account}`,
            onclick: (e) => answerRequest(user, 1, e.currentTarget),
          },
          'Accept',
        ),
        h(
          'button',
          {
            type: 'button',
            class: 'btn ghost small',
            'data-testid': 'request-reject',
            'aria-label': `Reject ${user.name || user.account}`,
            onclick: (e) => answerRequest(user, 2, e.currentTarget),
          },
          'Reject',
        ),
      ),
    ),
  );
  byId('request-empty').hidden = state.requests.length > 0;
  const count = byId('requests-count');
  count.hidden = state.requests.length === 0;
  count.textContent = String(state.requests.length);
  count.setAttribute('aria-label', `${state.requests.length} friend requests`);

  const friends = byId('friend-list');
  friends.replaceChildren(
    ...[...state.friends]
      .sort((a, b) => (a.name || a.account).localeCompare(b.name || b.account))
      .map((user) =>
        personRow(
          user,
          'friend-item',
          h(
            'button',
            {
              type: 'button',
              class: 'btn secondary small',
              'data-testid': 'friend-message',
              'aria-label': `Message ${user.name || user.account}`,
              onclick: () => openDirect(user),
            },
            'Message',
          ),
        ),
      ),
  );
  byId('friend-empty').hidden = state.friends.length > 0;
}

async function answerRequest(user, status, button) {
  button.disabled = true;
  try {
    await api('POST', '/api/friend/status/modify', { fid: user.id, status });
    toast(status === 1 ? `You and ${user.name || user.account} are now friends.` : 'Request rejected.');
    await refreshContacts();
    if (status === 1) await refreshConversations();
  } catch (err) {
    button.disabled = false;
    toast(err.message, 'error');
  }
}

async function openDirect(user) {
  const find = () =>
    [...state.convs.values()].find((c) => c.group.mode === 1 && c.peer && c.peer.id === user.id);
  let conv = find();
  if (!conv) {
    await refreshConversations();
    conv = find();
  }
  if (!conv) {
    toast(`No conversation with ${user.name || user.account} yet.`, 'error');
    return;
  }
  selectTab('chats');
  openConversation(conv.gid);
}

async function searchAccount(event) {
  event.preventDefault();
  const input = byId('search-account');
  const account = input.value.trim();
  const box = byId('search-result');
  if (!account) {
    input.focus();
    return;
  }
  box.replaceChildren(h('p', { class: 'muted small' }, 'Searching…'));
  let user;
  try {
    user = await api('GET', `/api/user/search?account=${q(account)}`);
  } catch (err) {
    box.replaceChildren(
      h(
        'p',
        { class: 'muted small', 'data-testid': 'search-none' },
        err.status === 404 ? `No user with the account “${account}”.` : err.message,
      ),
    );
    return;
  }
  rememberUser(user);
  let action;
  if (user.id === state.me.id) {
    action = h('span', { class: 'muted small' }, 'That’s you');
  } else if (state.friends.some((f) => f.id === user.id)) {
    action = h(
      'button',
      { type: 'button', class: 'btn secondary small', 'data-testid': 'friend-message', onclick: () => openDirect(user) },
      'Message',
    );
  } else if (state.requests.some((r) => r.id === user.id)) {
    action = h(
      'button',
      {
        type: 'button',
        class: 'btn primary small',
        'data-testid': 'request-accept',
        onclick: (e) => answerRequest(user, 1, e.currentTarget),
      },
      'Accept request',
    );
  } else if (state.sentRequests.has(user.id)) {
    action = h('span', { class: 'muted small', 'data-testid': 'friend-requested' }, 'Request sent');
  } else {
    action = h(
      'button',
      {
        type: 'button',
        class: 'btn primary small',
        'data-testid': 'friend-add',
        onclick: async (e) => {
          const button = e.currentTarget;
          button.disabled = true;
          try {
            await api('POST', '/api/friend/add', { fid: user.id });
            state.sentRequests.add(user.id);
            button.replaceWith(h('span', { class: 'muted small', 'data-testid': 'friend-requested' }, 'Request sent'));
            announce(`Friend request sent to ${user.name || user.account}`);
          } catch (err) {
            button.disabled = false;
            toast(err.message, 'error');
          }
        },
      },
      'Add friend',
    );
  }
  box.replaceChildren(h('ul', { class: 'people' }, personRow(user, 'search-user', action)));
}

// ---------------------------------------------------------------------------
// Groups

function friendPicker(list, friends, prefix) {
  list.replaceChildren(
    ...friends.map((user) => {
      const id = `${prefix}-${user.id}`;
      return h(
        'li',
        null,
        h('input', { type: 'checkbox', id, value: user.id, 'data-testid': `${prefix}-option`, 'data-uid': user.id }),
        h(
          'label',
          { for: id },
          avatarEl(user.name || user.account, user.avatar, 'sm'),
          h('span', null, user.name || user.account),
          h('span', { class: 'person-account' }, `@${user.account}`),
        ),
      );
    }),
  );
}

const checkedUids = (list) =>
  [...list.querySelectorAll('input[type=checkbox]:checked')].map((box) => Number(box.value));

async function openCreateGroup() {
  const dialog = byId('group-create-dialog');
  const form = byId('group-create-form');
  form.reset();
  form.querySelector('.form-error').textContent = '';
  friendPicker(byId('group-create-friends'), state.friends, 'group-create');
  byId('group-create-nofriends').hidden = state.friends.length > 0;
  dialog.showModal();
  byId('group-create-name').focus();
  refreshContacts().then(() => {
    if (!dialog.open) return;
    const keep = new Set(checkedUids(byId('group-create-friends')));
    friendPicker(byId('group-create-friends'), state.friends, 'group-create');
    for (const box of byId('group-create-friends').querySelectorAll('input')) box.checked = keep.has(Number(box.value));
    byId('group-create-nofriends').hidden = state.friends.length > 0;
  });
}

async function submitCreateGroup(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const error = form.querySelector('.form-error');
  const name = byId('group-create-name').value.trim();
  const uids = checkedUids(byId('group-create-friends'));
  if (!name) {
    error.textContent = 'Give the group a name.';
    byId('group-create-name').focus();
    return;
  }
  const submit = form.querySelector('[type=submit]');
  submit.disabled = true;
  try {
    const gid = await api('POST', '/api/group/create', {
      group: { name, avatar: '', mode: 2, creatorUid: state.me.id },
      users: uids.map((uid) => ({ uid, role: 1 })),
    });
    byId('group-create-dialog').close();
    await refreshConversations();
    selectTab('chats');
    if (state.convs.has(gid)) openConversation(gid);
    toast(`Group “${name}” created.`);
  } catch (err) {
    error.textContent = err.message;
  } finally {
    submit.disabled = false;
  }
}

async function openInfo() {
  const conv = state.convs.get(state.openGid);
  if (!conv) return;
  const dialog = byId('group-info-dialog');
  dialog.dataset.gid = String(conv.gid);
  dialog.querySelector('.form-error').textContent = '';
  renderInfo(conv);
  dialog.showModal();
  try {
    await loadMembers(conv);
    await refreshContacts();
  } catch (err) {
    dialog.querySelector('.form-error').textContent = err.message;
  }
  if (dialog.open && dialog.dataset.gid === String(conv.gid)) renderInfo(conv);
  renderChatHeader(conv);
}

function myRole(conv) {
  return conv.members?.find((row) => row.user.id === state.me.id)?.role ?? null;
}

function renderInfo(conv) {
  const isGroup = conv.group.mode === 2;
  const admin = isGroup && myRole(conv) === 2;
  byId('group-info-title').textContent = isGroup ? convName(conv) : `Chat with ${convName(conv)}`;

  const rename = byId('group-rename-form');
  rename.hidden = !admin;
  if (admin && document.activeElement !== byId('group-rename-name')) byId('group-rename-name').value = conv.group.name || '';

  const members = byId('group-members');
  const rows = conv.members || [];
  members.replaceChildren(
    ...[...rows]
      .sort((a, b) => b.role - a.role || (a.user.name || '').localeCompare(b.user.name || ''))
      .map((row) => {
        const self = row.user.id === state.me.id;
        return personRow(
          row.user,
          'member-item',
          row.role === 2 ? h('span', { class: 'tag', 'data-testid': 'member-admin' }, 'Admin') : null,
          self ? h('span', { class: 'tag muted' }, 'You') : null,
          admin && !self
            ? h(
                'button',
                {
                  type: 'button',
                  class: 'btn ghost small',
                  'data-testid': 'member-remove',
                  'aria-label': `Remove ${row.user.name || row.user.account}`,
                  onclick: () => changeMembers(conv, [row.user.id], 2),
                },
                'Remove',
              )
            : null,
        );
      }),
  );
  if (!conv.members) members.replaceChildren(h('li', { class: 'muted small' }, 'Loading members…'));

  const inGroup = new Set(rows.map((row) => row.user.id));
  const candidates = state.friends.filter((f) => !inGroup.has(f.id));
  byId('group-add-form').hidden = !admin || candidates.length === 0;
  friendPicker(byId('group-add-friends'), candidates, 'group-add');
  const leave = byId('group-leave');
  leave.hidden = !isGroup;
  delete leave.dataset.confirm;
  leave.textContent = 'Leave group';
}

async function changeMembers(conv, uids, opType) {
  const dialog = byId('group-info-dialog');
  const error = dialog.querySelector('.form-error');
  error.textContent = '';
  try {
    await api('POST', '/api/group/user/change', { gid: conv.gid, uids, opType });
    await loadMembers(conv);
    renderInfo(conv);
    renderChatHeader(conv);
    announce(opType === 1 ? 'Members added' : 'Member removed');
  } catch (err) {
    error.textContent = err.message;
  }
}

async function submitAddMembers(event) {
  event.preventDefault();
  const conv = state.convs.get(Number(byId('group-info-dialog').dataset.gid));
  const uids = checkedUids(byId('group-add-friends'));
  if (!conv || !uids.length) return;
  await changeMembers(conv, uids, 1);
}

async function submitRename(event) {
  event.preventDefault();
  const conv = state.convs.get(Number(byId('group-info-dialog').dataset.gid));
  const name = byId('group-rename-name').value.trim();
  const error = byId('group-info-dialog').querySelector('.form-error');
  if (!conv || !name) {
    error.textContent = 'The group needs a name.';
    return;
  }
  try {
    await api('POST', '/api/group/update', { id: conv.gid, name, avatar: conv.group.avatar || '' });
    conv.group = { ...conv.group, name };
    renderInfo(conv);
    renderChatHeader(conv);
    renderConvList();
    toast('Group renamed.');
  } catch (err) {
    error.textContent = err.message;
  }
}

async function leaveGroup() {
  const conv = state.convs.get(Number(byId('group-info-dialog').dataset.gid));
  if (!conv) return;
  const button = byId('group-leave');
  if (button.dataset.confirm !== 'yes') {
    // two-step confirmation inside the dialog (no blocking window.confirm)
    button.dataset.confirm = 'yes';
    button.textContent = `Really leave “${convName(conv)}”?`;
    return;
  }
  try {
    await api('POST', '/api/group/user/change', { gid: conv.gid, uids: [state.me.id], opType: 2 });
    byId('group-info-dialog').close();
    dropConversation(conv.gid);
    renderConvList();
    toast(`You left “${convName(conv)}”.`);
  } catch (err) {
    byId('group-info-dialog').querySelector('.form-error').textContent = err.message;
  }
}

// ---------------------------------------------------------------------------
// Images

function openImageDialog() {
  const form = byId('image-form');
  form.reset();
  form.querySelector('.form-error').textContent = '';
  byId('image-dialog').showModal();
  byId('image-url').focus();
}

function submitImage(event) {
  event.preventDefault();
  const url = safeHttpUrl(byId('image-url').value);
  const conv = state.convs.get(state.openGid);
  if (!url) {
    byId('image-form').querySelector('.form-error').textContent = 'Enter an http:// or https:// image address.';
    return;
  }
  byId('image-dialog').close();
  if (conv) sendMessage(conv, 'Image', url);
  byId('composer-input').focus();
}

// ---------------------------------------------------------------------------
// Tabs

function selectTab(tab) {
  state.tab = tab;
  for (const [name, button, panel] of [
    ['chats', byId('tab-chats'), byId('panel-chats')],
    ['contacts', byId('tab-contacts'), byId('panel-contacts')],
  ]) {
    const on = name === tab;
    button.setAttribute('aria-selected', String(on));
    button.tabIndex = on ? 0 : -1;
    panel.hidden = !on;
  }
  if (tab === 'contacts') refreshContacts();
}

/** Arrow-key navigation inside a role=tablist (WAI-ARIA tabs pattern). */
function tablistKeys(tablist, onSelect) {
  tablist.addEventListener('keydown', (event) => {
    const tabs = [...tablist.querySelectorAll('[role=tab]')];
    const index = tabs.indexOf(document.activeElement);
    if (index < 0) return;
    let next = null;
    if (event.key === 'ArrowRight') next = tabs[(index + 1) % tabs.length];
    else if (event.key === 'ArrowLeft') next = tabs[(index - 1 + tabs.length) % tabs.length];
    else if (event.key === 'Home') next = tabs[0];
    else if (event.key === 'End') next = tabs[tabs.length - 1];
    if (!next) return;
    event.preventDefault();
    onSelect(next);
    next.focus();
  });
}

function selectAuthTab(which) {
  const login = which === 'login';
  byId('tab-login').setAttribute('aria-selected', String(login));
  byId('tab-register').setAttribute('aria-selected', String(!login));
  byId('tab-login').tabIndex = login ? 0 : -1;
  byId('tab-register').tabIndex = login ? -1 : 0;
  byId('login-form').hidden = !login;
  byId('register-form').hidden = login;
}

// ---------------------------------------------------------------------------
// Session: sign in, register, sign out

function saveSession() {
  try {
    localStorage.setItem(STORE_TOKEN, state.token);
    localStorage.setItem(STORE_USER, JSON.stringify(state.me));
  } catch {
    // private mode: the session lasts until the tab closes
  }
}

function renderMe() {
  const me = state.me;
  byId('me-avatar').replaceChildren(avatarEl(me.name || me.account, me.avatar));
  byId('me-name').textContent = me.name || me.account;
  byId('me-account').textContent = `@${me.account}`;
}

let pollTimer = 0;

function enterApp(token, user) {
  state.token = token;
  state.me = user;
  rememberUser(user);
  saveSession();
  byId('auth-screen').hidden = true;
  byId('app').hidden = false;
  byId('banner').hidden = false;
  renderMe();
  selectTab('chats');
  closeConversation();
  net.enabled = true;
  net.attempt = 0;
  net.everOnline = false;
  connect();
  refreshConversations();
  refreshContacts();
  clearInterval(pollTimer);
  pollTimer = setInterval(() => {
    if (document.visibilityState !== 'visible' || !state.me) return;
    refreshConversations();
    refreshContacts();
  }, POLL_MS);
}

function leaveApp(message) {
  if (!state.me && !state.token) return;
  disconnect();
  clearInterval(pollTimer);
  for (const dialog of document.querySelectorAll('dialog[open]')) dialog.close();
  try {
    localStorage.removeItem(STORE_TOKEN);
    localStorage.removeItem(STORE_USER);
  } catch {
    // nothing stored
  }
  state.token = null;
  state.me = null;
  state.users.clear();
  state.convs.clear();
  state.outbox.clear();
  state.acked.clear();
  state.unknownPushes = [];
  state.friends = [];
  state.requests = [];
  state.sentRequests.clear();
  state.openGid = null;
  ackQueue.clear();
  byId('conv-list').replaceChildren();
  byId('msg-list').replaceChildren();
  byId('search-result').replaceChildren();
  byId('composer-input').value = '';
  document.title = 'rim';
  showAuth(message);
}

function showAuth(message) {
  byId('app').hidden = true;
  byId('banner').hidden = true;
  byId('auth-screen').hidden = false;
  selectAuthTab('login');
  byId('login-form').reset();
  byId('login-form').querySelector('.form-error').textContent = message || '';
  byId('login-account').focus();
}

async function signIn(account, password) {
  const token = await api('POST', '/api/user/login', { account, password });
  if (typeof token !== 'string' || !token) throw new ApiError(500, 'The server sent no token.');
  state.token = token;
  let user;
  try {
    user = await api('GET', `/api/user/token?token=${q(token)}`);
  } catch (err) {
    state.token = null;
    throw err;
  }
  enterApp(token, user);
}

async function submitLogin(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const error = form.querySelector('.form-error');
  const account = byId('login-account').value.trim();
  const password = byId('login-password').value;
  error.textContent = '';
  if (!account || !password) {
    error.textContent = 'Enter your account and password.';
    (account ? byId('login-password') : byId('login-account')).focus();
    return;
  }
  const submit = form.querySelector('[type=submit]');
  submit.disabled = true;
  try {
    await signIn(account, password);
  } catch (err) {
    error.textContent = err.status === 401 ? 'Wrong account or password.' : err.message;
  } finally {
    submit.disabled = false;
  }
}

async function submitRegister(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const error = form.querySelector('.form-error');
  const name = byId('register-name').value.trim();
  const account = byId('register-account').value.trim();
  const password = byId('register-password').value;
  const email = byId('register-email').value.trim();
  const avatar = byId('register-avatar').value.trim();
  error.textContent = '';
  const missing = [
    [name, 'register-name', 'a display name'],
    [account, 'register-account', 'an account'],
    [password, 'register-password', 'a password'],
  ].find(([value]) => !value);
  if (missing) {
    error.textContent = `Please enter ${missing[2]}.`;
    byId(missing[1]).focus();
    return;
  }
  if (avatar && !safeHttpUrl(avatar)) {
    error.textContent = 'The avatar must be an http:// or https:// address.';
    byId('register-avatar').focus();
    return;
  }
  const submit = form.querySelector('[type=submit]');
  submit.disabled = true;
  try {
    await api('POST', '/api/user/create', { name, avatar, email, account, password });
    await signIn(account, password);
  } catch (err) {
    error.textContent = err.status === 409 ? `The account “${account}” is taken.` : err.message;
  } finally {
    submit.disabled = false;
  }
}

async function logout() {
  byId('logout-btn').disabled = true;
  if (net.loggedIn) {
    const bye = request('Logout', {});
    net.loggedIn = false; // nothing else may go out on this connection
    clearTimeout(ackTimer);
    ackTimer = 0;
    for (const timer of readTimers.values()) clearTimeout(timer);
    readTimers.clear();
    await bye.catch(() => {});
  }
  await api('POST', '/api/user/logout').catch(() => {});
  byId('logout-btn').disabled = false;
  leaveApp();
}

// ---------------------------------------------------------------------------
// Wiring

function wire() {
  configureApi({ token: () => state.token, expired: () => leaveApp(EXPIRED) });
  byId('login-form').addEventListener('submit', submitLogin);
  byId('register-form').addEventListener('submit', submitRegister);
  byId('tab-login').addEventListener('click', () => selectAuthTab('login'));
  byId('tab-register').addEventListener('click', () => selectAuthTab('register'));
  tablistKeys(byId('tab-login').parentElement, (tab) => selectAuthTab(tab.id === 'tab-login' ? 'login' : 'register'));

  byId('tab-chats').addEventListener('click', () => selectTab('chats'));
  byId('tab-contacts').addEventListener('click', () => selectTab('contacts'));
  tablistKeys(byId('tab-chats').parentElement, (tab) => selectTab(tab.id === 'tab-chats' ? 'chats' : 'contacts'));

  byId('logout-btn').addEventListener('click', logout);
  byId('new-group-btn').addEventListener('click', openCreateGroup);
  byId('banner-retry').addEventListener('click', retryNow);
  byId('conv-filter').addEventListener('input', (e) => {
    state.filter = e.currentTarget.value.trim();
    renderConvList();
  });

  byId('search-form').addEventListener('submit', searchAccount);
  byId('contacts-refresh').addEventListener('click', () => {
    refreshContacts();
    refreshConversations();
  });

  byId('back-btn').addEventListener('click', () => {
    setView('list');
    byId('conv-list').querySelector(`[data-gid="${state.openGid}"]`)?.focus();
  });
  byId('info-btn').addEventListener('click', openInfo);
  byId('load-older').addEventListener('click', loadOlder);
  byId('jump-latest').addEventListener('click', scrollToBottom);
  byId('messages').addEventListener('scroll', () => {
    stickToBottom = nearBottom();
    if (stickToBottom) byId('jump-latest').hidden = true;
  });

  const input = byId('composer-input');
  byId('composer').addEventListener('submit', (e) => {
    e.preventDefault();
    submitComposer();
  });
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      submitComposer();
    } else if (e.key === 'Escape' && isNarrow()) {
      byId('back-btn').click();
    }
  });
  input.addEventListener('input', autosize);
  byId('rich-btn').addEventListener('click', (e) => {
    state.richMode = !state.richMode;
    e.currentTarget.setAttribute('aria-pressed', String(state.richMode));
    byId('rich-hint').hidden = !state.richMode;
  });
  byId('image-btn').addEventListener('click', openImageDialog);
  byId('image-form').addEventListener('submit', submitImage);

  byId('group-create-form').addEventListener('submit', submitCreateGroup);
  byId('group-rename-form').addEventListener('submit', submitRename);
  byId('group-add-form').addEventListener('submit', submitAddMembers);
  byId('group-leave').addEventListener('click', leaveGroup);
  for (const button of document.querySelectorAll('dialog [data-close]')) {
    button.addEventListener('click', () => button.closest('dialog').close());
  }

  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState !== 'visible') return;
    readOpenConversation();
    if (state.me && !net.ws) retryNow();
  });
  window.addEventListener('focus', readOpenConversation);
  window.addEventListener('online', retryNow);
  matchMedia(NARROW_QUERY).addEventListener('change', readOpenConversation);
  window.addEventListener('storage', (e) => {
    if (e.key === STORE_TOKEN && !e.newValue && state.token) leaveApp('You signed out in another tab.');
  });
}

function start() {
  wire();
  let token = null;
  let user = null;
  try {
    token = localStorage.getItem(STORE_TOKEN);
    user = JSON.parse(localStorage.getItem(STORE_USER) || 'null');
  } catch {
    token = null;
  }
  if (token && user && Number.isInteger(user.id)) {
    enterApp(token, user);
    api('GET', `/api/user/token?token=${q(token)}`)
      .then((fresh) => {
        if (!state.me || fresh.id !== state.me.id) return;
        state.me = fresh;
        rememberUser(fresh);
        saveSession();
        renderMe();
      })
      .catch(() => {}); // a 401 already signed us out; offline: keep going
  } else {
    setBanner('offline');
    showAuth();
  }
}

start();
