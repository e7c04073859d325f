// Group conversations on the server: creating one, its name, its members, leaving.
// Each throws ApiError on refusal; the store follows only what the server accepted.

import { api } from '../lib/api.js';
import { dropConv, renameGroup, state } from '../lib/store.js';
import { loadMembers } from './conversations.js';

export const ADD = 1;
export const REMOVE = 2;

const MEMBER = 1;

/** Returns the new group's gid. */
export const createGroup = (name, uids) =>
  api('POST', '/api/group/create', {
    group: { name, avatar: '', mode: 2, creatorUid: state.me.id },
    users: uids.map((uid) => ({ uid, role: MEMBER })),
  });

/** Adds (ADD) or removes (REMOVE) members, then reloads the member list. */
export async function changeMembers(conv, uids, opType) {
  await api('POST', '/api/group/user/change', { gid: conv.gid, uids, opType });
  await loadMembers(conv);
}

export async function rename(conv, name) {
  await api('POST', '/api/group/update', { id: conv.gid, name, avatar: conv.group.avatar || '' });
  renameGroup(conv, name);
}

export async function leave(conv) {
  await api('POST', '/api/group/user/change', { gid: conv.gid, uids: [state.me.id], opType: REMOVE });
  dropConv(conv.gid);
}
