// Changes to messages after they were sent (PROTOCOL.md §6.1): recall, edit and
// reactions. Ours go out as Recall / Edit / React events and apply once the server
// acknowledges them (it pushes them to every other connection, never back to this
// one). Those of others, and ours from other devices, arrive as pushes that hold a
// place in the group's seq, so that a replay (offline sync, repair) applies once.

import { applyEdit, applyReaction, applyRecall, reactedWith } from '../lib/message-state.js';
import { request } from '../lib/socket.js';
import { changeMessage, noteSeq, state } from '../lib/store.js';
import { nowText } from '../lib/time.js';
import { awaitConversation } from './conversations.js';

const REFUSALS = {
  forbidden: 'you may not do that to this message',
  too_late: 'it is too late to change this message',
  recalled: 'the message was recalled',
  not_member: 'you are no longer a member of this conversation',
  unknown_message: 'the message is not there any more',
  rate_limited: 'too many actions at once; try again in a moment',
};

/** The server said no (its reason, in words), or could not be asked; `retryable`: worth asking again. */
class ChangeRefused extends Error {
  constructor(message, retryable = false) {
    super(message);
    this.retryable = retryable;
  }
}

const reacting = new Set(); // "msgId emoji" of our React events awaiting their ack

async function ask(event, fields) {
  let ack;
  try {
    ack = await request(event, fields);
  } catch {
    throw new ChangeRefused('not connected; try again once online', true);
  }
  if (ack.content !== 'Ok') {
    const reason = REFUSALS[ack.content];
    const text = reason && ack.detail ? `${reason} (${ack.detail})` : reason || ack.detail || ack.content;
    throw new ChangeRefused(text, ack.content === 'rate_limited');
  }
}

export async function recallMessage(conv, msg) {
  await ask('Recall', { gid: conv.gid, msgId: msg.id });
  changeMessage(conv, msg.id, applyRecall);
}

export async function editMessage(conv, msg, content) {
  await ask('Edit', { gid: conv.gid, msgId: msg.id, content });
  const editTime = nowText();
  changeMessage(conv, msg.id, (m) => applyEdit(m, content, editTime));
}

/** Puts our `emoji` on a message, or takes it off; a second click while the first is on its way is ignored. */
export async function toggleReaction(conv, msg, emoji) {
  const key = `${msg.id} ${emoji}`;
  if (reacting.has(key)) return;
  reacting.add(key);
  const on = !reactedWith(msg, emoji);
  try {
    await ask('React', { gid: conv.gid, msgId: msg.id, content: emoji });
  } finally {
    reacting.delete(key);
  }
  changeMessage(conv, msg.id, (m) => applyReaction(m, { uid: state.me.id, emoji, on, byMe: true }));
}

function onChangePush(event, body, apply) {
  if (!Number.isInteger(body.gid) || !Number.isInteger(body.msgId)) return;
  const conv = state.convs.get(body.gid);
  if (!conv) {
    awaitConversation(event, body);
    return;
  }
  if (noteSeq(conv, body.seq)) changeMessage(conv, body.msgId, apply);
}

function onRecallPush(body) {
  onChangePush('Recall', body, applyRecall);
}

function onEditPush(body) {
  const editTime = typeof body.editTime === 'string' ? body.editTime : nowText();
  onChangePush('Edit', body, (msg) => applyEdit(msg, body.content, editTime));
}

function onReactPush(body) {
  const { uid, content: emoji, on } = body;
  if (!Number.isInteger(uid) || typeof emoji !== 'string' || !emoji || typeof on !== 'boolean') return;
  const byMe = uid === state.me?.id;
  onChangePush('React', body, (msg) => applyReaction(msg, { uid, emoji, on, byMe }));
}

export const CHANGE_PUSHES = { Recall: onRecallPush, Edit: onEditPush, React: onReactPush };
