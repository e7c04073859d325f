// The client's state, in one place: the session, users, conversations with their
// messages, the outbox of own messages not yet acknowledged, contacts and what the
// screen shows. Other modules read `state` freely but change it only through the
// functions here, which say what changed with notify(topic, item). Views subscribe to
// topics; notifications are batched and delivered once per microtask, so several
// changes in one task cost one render.
//
// Topics (item in brackets):
//   convs       the conversation list: a conversation added or dropped, its newest
//               message, unread count, name or pending sends changed
//   conv [conv] a conversation's details: group, peer or members
//   open        which conversation is open
//   message [msg]  a message was added (own pending ones too), confirmed or changed
//                  (recalled, edited, reacted to)
//   history [conv] many messages of a conversation changed at once
//   reply [conv]   the message a conversation's composer replies to
//   users [uid] a user became known or changed
//   presence [uid] a user went online or offline
//   typing [gid]   who is typing in a conversation
//   contacts    friends or friend requests
//   uploads [upload]  a file on its way to the server was added, progressed, failed or left
//   connection  the WebSocket's state (state.connection)

import { isNarrow } from './dom.js';
import { refreshState } from './message-state.js';
import { nowText } from './time.js';

const STORE_PEER_READ = 'rim.peerRead.';

export const state = {
  token: null,
  me: null,
  users: new Map(), // uid -> User
  convs: new Map(), // gid -> conversation
  outbox: new Map(), // clientMsgId -> pending own message
  unknownPushes: [], // {event, body} of pushes for groups not (yet) in the list
  acked: new Map(), // gid -> highest msgId acknowledged as delivered
  presence: new Map(), // uid -> {online, lastSeen}
  typing: new Map(), // gid -> Set of the uids typing there
  uploads: [], // files being uploaded or refused, oldest first (sync/uploads.js)
  friends: [],
  requests: [],
  sentRequests: new Set(),
  openGid: null,
  view: 'list', // narrow screens: 'list' or 'chat'
  tab: 'chats',
  filter: '',
  richMode: false,
  connection: { kind: 'offline', enabled: false, everOnline: false, retryAt: 0 },
};

// ---------------------------------------------------------------------------
// subscribe / notify

const listeners = new Map(); // topic -> Set of functions
const dirty = new Map(); // topic -> Set of items, until the next flush

export function subscribe(topic, fn) {
  if (!listeners.has(topic)) listeners.set(topic, new Set());
  listeners.get(topic).add(fn);
  return () => listeners.get(topic).delete(fn);
}

function notify(topic, item) {
  if (!dirty.size) queueMicrotask(flush);
  if (!dirty.has(topic)) dirty.set(topic, new Set());
  if (item !== undefined) dirty.get(topic).add(item);
}

function flush() {
  const batch = [...dirty];
  dirty.clear();
  for (const [topic, items] of batch) {
    for (const fn of listeners.get(topic) || []) {
      try {
        fn([...items]);
      } catch (err) {
        reportError(err); // one broken view must not stop the others
      }
    }
  }
}

// ---------------------------------------------------------------------------
// session and users

export function setToken(token) {
  state.token = token;
}

export function setMe(user) {
  state.me = user;
  rememberUser(user);
}

export function signedOut() {
  state.token = null;
  state.me = null;
  state.users.clear();
  state.convs.clear();
  state.outbox.clear();
  state.acked.clear();
  state.presence.clear();
  state.typing.clear();
  state.uploads = [];
  state.unknownPushes = [];
  state.friends = [];
  state.requests = [];
  state.sentRequests.clear();
  state.openGid = null;
  notify('convs');
}

export function rememberUser(user) {
  if (!user || !Number.isInteger(user.id)) return;
  const known = state.users.get(user.id);
  state.users.set(user.id, user);
  const changed = !known || ['name', 'account', 'avatar'].some((key) => known[key] !== user[key]);
  if (changed) notify('users', user.id);
}

export const userName = (uid) => {
  const u = state.users.get(uid);
  return u ? u.name || u.account : `User ${uid}`;
};

export const displayName = (user) => user.name || user.account;

export const isMine = (msg) => state.me && msg.uid === state.me.id;

// ---------------------------------------------------------------------------
// conversations

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
    replyTo: null, // the message the composer replies to
    seenSeq: 0, // highest seq of the group pushed to this client (messages and changes)
  };
}

/** Adds or updates the conversation of a group; a new one starts with its stored peer read mark. */
export function upsertConv(group, storedPeerRead = 0) {
  let conv = state.convs.get(group.id);
  if (!conv) {
    conv = newConv(group);
    conv.peerRead = storedPeerRead;
    state.convs.set(group.id, conv);
  }
  conv.group = group;
  notify('convs');
  notify('conv', conv);
  return conv;
}

export function dropConv(gid) {
  state.convs.delete(gid);
  notify('convs');
  if (state.openGid === gid) setOpen(null);
}

export function setPeer(conv, user) {
  conv.peer = user;
  notify('convs');
  notify('conv', conv);
}

export function setMembers(conv, rows) {
  conv.members = rows;
  for (const row of rows) rememberUser(row.user);
  if (conv.group.mode === 1) {
    const other = rows.find((row) => row.user && row.user.id !== state.me.id);
    if (other) conv.peer = other.user;
  }
  notify('convs');
  notify('conv', conv);
}

export function renameGroup(conv, name) {
  conv.group = { ...conv.group, name };
  notify('convs');
  notify('conv', conv);
}

export const myRole = (conv) => conv.members?.find((row) => row.user.id === state.me.id)?.role ?? null;

export function convName(conv) {
  if (conv.group.mode === 1) {
    if (conv.peer) return displayName(conv.peer);
    return conv.group.name || 'Direct message';
  }
  return conv.group.name || 'Group';
}

export const convAvatarUrl = (conv) => (conv.group.mode === 1 ? conv.peer?.avatar : conv.group.avatar);

/** The one-to-one conversation with a user, if the list has it. */
export const directWith = (uid) =>
  [...state.convs.values()].find((c) => c.group.mode === 1 && c.peer && c.peer.id === uid);

export const newestOf = (conv) => conv.pending[conv.pending.length - 1] || conv.last;

export function sortedConvs() {
  const key = (c) => (c.pending.length ? Number.MAX_SAFE_INTEGER : c.last ? c.last.id : 0);
  return [...state.convs.values()].sort((a, b) => key(b) - key(a) || b.gid - a.gid);
}

/** Whether the user can see this conversation's newest messages right now (so they count as read). */
export function isConvVisible(conv) {
  return (
    conv &&
    state.openGid === conv.gid &&
    document.visibilityState === 'visible' &&
    state.me !== null &&
    (!isNarrow() || state.view === 'chat')
  );
}

export function setLast(conv, msg) {
  if (conv.last && msg.id <= conv.last.id) return false;
  conv.last = msg;
  notify('convs');
  return true;
}

/** A chat list row: the conversation's newest message and its unread count. */
export function setSummary(conv, last, unread) {
  if (conv.last && last.id < conv.last.id) return;
  conv.last = last;
  conv.unread = last.id <= conv.readSent ? 0 : unread;
  notify('convs');
}

export function setUnread(conv, count) {
  if (conv.unread === count) return;
  conv.unread = count;
  notify('convs');
}

/** What the Read sender has told the server, and whether it still owes a Read. */
export function setReadState(conv, { readSent = conv.readSent, needsRead = conv.needsRead }) {
  conv.readSent = readSent;
  conv.needsRead = needsRead;
}

export function setDraft(conv, text) {
  conv.draft = text;
}

/** The message the composer replies to (null: none). */
export function setReplyTo(conv, msg) {
  if (conv.replyTo === msg) return;
  conv.replyTo = msg;
  notify('reply', conv);
}

// ---------------------------------------------------------------------------
// messages

const validReactions = (list) =>
  (Array.isArray(list) ? list : [])
    .filter((r) => r && typeof r.emoji === 'string' && Number.isInteger(r.count) && r.count > 0)
    .map((r) => ({ emoji: r.emoji, count: r.count, mine: r.mine === true }));

/** A message as the client keeps it, from whichever source it came. */
function newMessage({
  id,
  gid,
  uid,
  kind,
  content,
  clientMsgId,
  createTime,
  status = 'sent',
  replyTo,
  recalled,
  editTime,
  reactions,
}) {
  return {
    id,
    gid,
    uid,
    kind,
    content: typeof content === 'string' ? content : '',
    clientMsgId: clientMsgId ?? null,
    createTime: createTime ?? null,
    status, // pending, sent (stored), read (by another member) or failed
    error: null, // why it failed
    replyTo: Number.isInteger(replyTo) ? replyTo : null,
    recalled: recalled === true,
    editTime: typeof editTime === 'string' ? editTime : null,
    reactions: validReactions(reactions), // [{emoji, count, mine}]
    reactionsSeen: new Map(), // "uid emoji" -> on, as the last React push said
  };
}

/** From the REST API's MsgInfo. */
export const messageFromInfo = (m) => newMessage({ ...m, clientMsgId: m.client_msg_id });

/** From a Msg push's body. */
export const messageFromPush = (b) => newMessage({ ...b, id: b.msgId, createTime: b.createTime ?? nowText() });

/** One of ours, from the composer: pending until the server acknowledges it. */
export const ownMessage = (conv, kind, content, clientMsgId, replyTo = null) =>
  newMessage({
    id: null,
    gid: conv.gid,
    uid: state.me.id,
    kind,
    content,
    clientMsgId,
    createTime: nowText(),
    status: 'pending',
    replyTo,
  });

/** Confirmed messages by id, then own pending ones in send order: the order they show in. */
export function orderedMessages(conv) {
  const confirmed = [...conv.messages.values()].sort((a, b) => a.id - b.id);
  return confirmed.concat(conv.pending);
}

function storeMessage(conv, msg) {
  if (conv.messages.has(msg.id)) return false;
  msg.status = isMine(msg) && msg.id <= conv.peerRead ? 'read' : 'sent';
  conv.messages.set(msg.id, msg);
  return true;
}

/** A live message for a loaded conversation; false if it was there already. */
export function addMessage(conv, msg) {
  const added = storeMessage(conv, msg);
  if (added) notify('message', msg);
  return added;
}

/**
 * A page of history rows ({msg, user}); returns the messages that were new. Messages
 * already there take the page's state (recalled, edited, reactions). Whoever asked
 * for the page redraws, so there is no notification per message.
 */
export function addHistory(conv, rows) {
  markReadByOthers(conv, rows.map((row) => row.msg));
  const added = [];
  for (const row of rows) {
    rememberUser(row.user);
    const msg = messageFromInfo(row.msg);
    const known = conv.messages.get(msg.id);
    if (known) refreshState(known, msg);
    else if (storeMessage(conv, msg)) added.push(msg);
  }
  return added;
}

/** The copies of a message the client holds: the loaded one and the list's newest. */
function copiesOf(conv, id) {
  const copies = new Set([conv.messages.get(id), conv.last?.id === id ? conv.last : undefined]);
  copies.delete(undefined);
  return [...copies];
}

/**
 * A change to a confirmed message (recall, edit, reaction): `apply(msg)` changes one
 * copy and says whether it did. Only the copies held change: a message not loaded
 * comes in its current state with its history page.
 */
export function changeMessage(conv, id, apply) {
  for (const msg of copiesOf(conv, id)) {
    if (!apply(msg)) continue;
    notify('message', msg);
    if (msg === conv.last) notify('convs');
  }
}

/**
 * A push of the group's seq arrived: false if this client had it already (pushed live
 * and again by the offline sync or a repair), so that a change applies once.
 */
export function noteSeq(conv, seq) {
  if (!Number.isInteger(seq)) return true;
  if (seq <= conv.seenSeq) return false;
  conv.seenSeq = seq;
  return true;
}

/** After a reconnect the open conversation's messages were re-synced: redraw it whole. */
export const historyChanged = (conv) => notify('history', conv);

export function clearMessages(conv) {
  conv.messages.clear();
}

export function setLoaded(conv, loaded) {
  conv.loaded = loaded;
}

export function setPaging(conv, nextPage, hasOlder) {
  conv.nextPage = nextPage;
  conv.hasOlder = hasOlder;
}

export function setMessageStatus(msg, status, error = null) {
  msg.status = status;
  msg.error = error;
  notify('message', msg);
}

/**
 * Another member has read the group up to msgId: from a Read push, or implied by a
 * message of theirs (sending raises the sender's own read watermark, and the server
 * announces no Read for that).
 */
export function markPeerRead(conv, msgId) {
  if (!(msgId > conv.peerRead)) return;
  conv.peerRead = msgId;
  savePeerRead();
  for (const msg of conv.messages.values()) {
    if (isMine(msg) && msg.id <= conv.peerRead && msg.status === 'sent') setMessageStatus(msg, 'read');
  }
}

function markReadByOthers(conv, messages) {
  let newest = 0;
  for (const msg of messages) if (!isMine(msg) && msg.id > newest) newest = msg.id;
  markPeerRead(conv, newest);
}

// peer read marks survive a reload (the REST API has no read receipts)
export function loadPeerRead() {
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
// outbox: own messages from the composer until the server acknowledges them

export function addPending(conv, msg) {
  conv.pending.push(msg);
  state.outbox.set(msg.clientMsgId, msg);
  notify('message', msg);
  notify('convs');
}

/**
 * The server stored a pending message as `id`. It joins the confirmed messages unless
 * they have it already (history fetched in between), in which case this copy is dropped.
 */
export function confirmPending(msg, id) {
  state.outbox.delete(msg.clientMsgId);
  const conv = state.convs.get(msg.gid);
  if (!conv) return;
  conv.pending = conv.pending.filter((m) => m !== msg);
  msg.id = id;
  if (!conv.messages.has(id) && conv.loaded) conv.messages.set(id, msg);
  setMessageStatus(msg, id <= conv.peerRead ? 'read' : 'sent');
  setLast(conv, msg);
  conv.unread = 0;
  notify('convs');
}

export function bufferPush(push) {
  state.unknownPushes.push(push);
}

export const takeBufferedPushes = () => state.unknownPushes.splice(0);

export const ackedUpTo = (gid) => state.acked.get(gid) || 0;

export function raiseAcked(gid, msgId) {
  state.acked.set(gid, Math.max(ackedUpTo(gid), msgId));
}

// ---------------------------------------------------------------------------
// contacts and screen

export function setContacts(friends, requests) {
  state.friends = friends;
  state.requests = requests;
  for (const u of friends) rememberUser(u);
  for (const u of requests) rememberUser(u);
  notify('contacts');
}

export function requestSent(uid) {
  state.sentRequests.add(uid);
}

export function setOpen(gid) {
  state.openGid = gid;
  notify('open');
  notify('convs');
}

export function setView(view) {
  state.view = view;
}

export function setTab(tab) {
  state.tab = tab;
}

export function setFilter(text) {
  state.filter = text;
  notify('convs');
}

export function setRichMode(on) {
  state.richMode = on;
}

// ---------------------------------------------------------------------------
// live signals: presence and typing

export function setPresence(uid, online, lastSeen) {
  const known = state.presence.get(uid);
  if (known && known.online === online && known.lastSeen === lastSeen) return;
  state.presence.set(uid, { online, lastSeen });
  notify('presence', uid);
}

/** Whether uid is typing in gid. */
export function setTyping(gid, uid, typing) {
  const typists = state.typing.get(gid) ?? new Set();
  if (typists.has(uid) === typing) return;
  if (typing) typists.add(uid);
  else typists.delete(uid);
  if (typists.size) state.typing.set(gid, typists);
  else state.typing.delete(gid);
  notify('typing', gid);
}

export function setConnection(patch) {
  Object.assign(state.connection, patch);
  notify('connection');
}

// ---------------------------------------------------------------------------
// uploads: files on their way to the server, until they are sent as messages

export function addUpload(upload) {
  state.uploads.push(upload);
  notify('uploads', upload);
}

export function changeUpload(upload, patch) {
  Object.assign(upload, patch);
  notify('uploads', upload);
}

export function dropUpload(upload) {
  state.uploads = state.uploads.filter((u) => u !== upload);
  notify('uploads', upload);
}
