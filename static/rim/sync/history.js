// Message history from the server: pages of a conversation, newest first from the
// server and kept by id in the store; and the catch-up after a reconnect. A page's
// uploaded files are asked about before it is drawn, so that its pictures take their
// size at once.

import { api, isServerRefusal } from '../lib/api.js';
import { toast } from '../lib/dom.js';
import { prefetchFiles } from '../lib/files.js';
import {
  addHistory,
  clearMessages,
  dropConv,
  historyChanged,
  setLast,
  setLoaded,
  setPaging,
  state,
} from '../lib/store.js';
import { readOpenConversation } from './receipts.js';

const PAGE_SIZE = 30;

async function fetchPage(conv, page) {
  const rows = await api('POST', '/api/message/history', { gid: conv.gid, uid: state.me.id, page, size: PAGE_SIZE });
  if (Array.isArray(rows)) await prefetchFiles(rows.map((row) => row.msg));
  return rows;
}

/** Loads one page into the store; the rows, or null when it failed (already told to the user). */
export async function loadHistoryPage(conv, page) {
  let rows;
  try {
    rows = await fetchPage(conv, page);
  } catch (err) {
    if (page === 1) setLoaded(conv, false);
    if (err.status === 403 || err.status === 404) {
      toast('You are no longer a member of this conversation.', 'error');
      dropConv(conv.gid);
    } else if (isServerRefusal(err)) {
      toast(err.message, 'error');
    }
    return null;
  }
  rows = rows || [];
  addHistory(conv, rows);
  setPaging(conv, page + 1, rows.length >= PAGE_SIZE);
  const newest = rows[rows.length - 1];
  if (newest) setLast(conv, conv.messages.get(newest.msg.id));
  return rows;
}

/** After a reconnect: fill whatever the offline sync did not cover. */
export async function reloadOpenConversation() {
  for (const conv of state.convs.values()) {
    if (conv.gid !== state.openGid && conv.loaded) {
      // loaded again when opened: cheaper than catching up every conversation now
      setLoaded(conv, false);
      clearMessages(conv);
    }
  }
  const conv = state.convs.get(state.openGid);
  if (!conv || !conv.loaded) return;
  const known = Math.max(0, ...conv.messages.keys());
  const rows = await fetchPage(conv, 1).catch(() => null);
  if (!rows || state.openGid !== conv.gid) return;
  const gap = rows.length >= PAGE_SIZE && rows[0].msg.id > known;
  if (gap) {
    // more came than one page holds: older pages load on demand again
    clearMessages(conv);
    setPaging(conv, 2, true);
  }
  for (const msg of addHistory(conv, rows)) setLast(conv, msg);
  historyChanged(conv);
  readOpenConversation();
}
