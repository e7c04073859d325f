// Who is online (PROTOCOL.md §6.2): asked of the server for the people of one-to-one
// chats and the friends whenever the conversation list loads, and kept up to date by
// Presence pushes, which the server sends about the users we share a one-to-one chat
// with.

import { api } from '../lib/api.js';
import { setPresence, state } from '../lib/store.js';

const UIDS_PER_REQUEST = 50; // well under the server's largest list (RIM_PAGE_SIZE_MAX)

const pushedAt = new Map(); // uid -> when its last Presence push arrived (ms)

function watchedUids() {
  const uids = new Set(state.friends.map((user) => user.id));
  for (const conv of state.convs.values()) if (conv.group.mode === 1 && conv.peer) uids.add(conv.peer.id);
  uids.delete(state.me?.id);
  return [...uids];
}

const lastSeenOf = (value) => (typeof value === 'string' ? value : null);

export async function refreshPresence() {
  const me = state.me;
  const uids = watchedUids();
  for (let i = 0; i < uids.length; i += UIDS_PER_REQUEST) {
    const asked = Date.now();
    let rows;
    try {
      rows = await api('GET', `/api/user/presence?uids=${uids.slice(i, i + UIDS_PER_REQUEST).join(',')}`);
    } catch {
      return; // the dots stay as they are until the next refresh
    }
    if (state.me !== me) return;
    for (const row of rows || []) {
      // a push that came while we asked is newer than the answer
      if (!Number.isInteger(row.uid) || (pushedAt.get(row.uid) ?? 0) >= asked) continue;
      setPresence(row.uid, row.online === true, lastSeenOf(row.lastSeen));
    }
  }
}

function onPresencePush(body) {
  const { uid, content } = body;
  if (!Number.isInteger(uid) || (content !== 'online' && content !== 'offline')) return;
  pushedAt.set(uid, Date.now());
  setPresence(uid, content === 'online', lastSeenOf(body.lastSeen));
}

export const PRESENCE_PUSHES = { Presence: onPresencePush };
