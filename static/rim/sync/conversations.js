// The conversation list from the server: groups and the chat list (newest message and
// unread count per conversation), members, users met along the way, and whether the
// people of one-to-one chats are online. Refreshes are coalesced: at most one runs,
// and one more follows if asked for meanwhile.

import { api, isServerRefusal, q } from '../lib/api.js';
import { toast } from '../lib/dom.js';
import { dispatchPush } from '../lib/socket.js';
import {
  bufferPush,
  dropConv,
  isConvVisible,
  isMine,
  loadPeerRead,
  markPeerRead,
  messageFromInfo,
  rememberUser,
  setMembers,
  setPeer,
  setSummary,
  state,
  takeBufferedPushes,
  upsertConv,
} from '../lib/store.js';
import { reloadOpenConversation } from './history.js';
import { refreshPresence } from './presence.js';
import { scheduleRead } from './receipts.js';

const CHAT_LIST_PAGE = 100;
const CHAT_LIST_MAX_PAGES = 20;

const refresh = {
  running: null, // the promise of the refresh under way
  again: false,
  reloadOpen: false,
};

/** Reloads the list; with reloadOpen (after a reconnect) the open conversation's newest page too. */
export function refreshConversations({ reloadOpen = false } = {}) {
  refresh.reloadOpen ||= reloadOpen;
  if (refresh.running) {
    refresh.again = true;
    return refresh.running;
  }
  refresh.running = (async () => {
    do {
      refresh.again = false;
      const reload = refresh.reloadOpen;
      refresh.reloadOpen = false;
      try {
        await loadConversations();
        if (reload) await reloadOpenConversation();
      } catch (err) {
        if (isServerRefusal(err) && state.me) toast(err.message, 'error');
      }
    } while (refresh.again && state.me);
  })().finally(() => {
    refresh.running = null;
  });
  return refresh.running;
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
    return upsertConv(group, peerRead[group.id] || 0);
  };
  for (const group of groups || []) upsert(group);
  for (const row of chats) {
    const conv = upsert(row.group);
    rememberUser(row.user);
    if (row.group.mode === 1 && row.user && row.user.id !== me.id) setPeer(conv, row.user);
    if (!row.msg) continue;
    const last = messageFromInfo(row.msg);
    if (!isMine(last)) markPeerRead(conv, last.id);
    setSummary(conv, last, row.unread || 0);
  }
  for (const gid of [...state.convs.keys()]) if (!seen.has(gid)) dropConv(gid);

  await Promise.all(
    [...state.convs.values()].filter((c) => c.group.mode === 1 && !c.peer).map((c) => loadMembers(c).catch(() => {})),
  );

  for (const push of takeBufferedPushes()) if (state.convs.has(push.body.gid)) dispatchPush(push.event, push.body);
  const open = state.convs.get(state.openGid);
  if (open && isConvVisible(open)) scheduleRead(open);
  await refreshPresence();
}

const listWait = { timer: 0 };

/**
 * A push for a group not in the list yet (just created or joined): kept, and handled
 * again once a refreshed list has the group. Pushes for groups still missing are dropped.
 */
export function awaitConversation(event, body) {
  bufferPush({ event, body });
  if (listWait.timer) return;
  listWait.timer = setTimeout(() => {
    listWait.timer = 0;
    refreshConversations();
  }, 250);
}

export async function loadMembers(conv) {
  const rows = await api('GET', `/api/group/user/get?gid=${q(conv.gid)}`);
  setMembers(conv, rows || []);
  return conv.members;
}

const userFetches = new Set();

/** A sender not met yet: their name replaces "User N" once known. */
export async function fetchUser(uid) {
  if (userFetches.has(uid)) return;
  userFetches.add(uid);
  try {
    rememberUser(await api('GET', `/api/user/get?uid=${q(uid)}`));
  } catch {
    // the name stays "User N"
  } finally {
    userFetches.delete(uid);
  }
}
