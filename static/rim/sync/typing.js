// "… is typing": our Typing events while the composer's text changes (at most one
// every 2 s per conversation: the server pushes no more than that), and others' Typing
// pushes, shown for a few seconds after the last one or until their message arrives.

import { isLoggedIn, request } from '../lib/socket.js';
import { setTyping, state } from '../lib/store.js';
import { fetchUser } from './conversations.js';

const SEND_EVERY_MS = 2000;
const SHOWN_FOR_MS = 5000;

const typing = {
  sentAt: new Map(), // gid -> when our last Typing went out (ms)
  timers: new Map(), // "gid uid" -> the timer that ends a typist's indicator
};

/** The composer's text changed in `conv`. */
export function typingIn(conv) {
  if (!isLoggedIn()) return;
  const now = Date.now();
  if (now - (typing.sentAt.get(conv.gid) ?? -Infinity) < SEND_EVERY_MS) return;
  typing.sentAt.set(conv.gid, now);
  request('Typing', { gid: conv.gid }).catch(() => {}); // a lost one only hides the indicator sooner
}

/** uid stopped typing in gid: its message arrived, or it has been quiet for a while. */
export function stoppedTyping(gid, uid) {
  const key = `${gid} ${uid}`;
  clearTimeout(typing.timers.get(key));
  typing.timers.delete(key);
  setTyping(gid, uid, false);
}

function onTypingPush(body) {
  const { gid, uid } = body;
  if (!Number.isInteger(gid) || !Number.isInteger(uid) || uid === state.me?.id || !state.convs.has(gid)) return;
  const key = `${gid} ${uid}`;
  clearTimeout(typing.timers.get(key));
  typing.timers.set(key, setTimeout(() => stoppedTyping(gid, uid), SHOWN_FOR_MS));
  setTyping(gid, uid, true);
  if (!state.users.has(uid)) fetchUser(uid);
}

export const TYPING_PUSHES = { Typing: onTypingPush };
