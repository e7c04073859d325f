// What the server pushes, event by event. PUSH_HANDLERS is the dispatch table: a new
// push is one more entry, its handler changing the store. Messages and read marks are
// handled here; changes to messages in changes.js, typing and presence in their own
// modules.

import { plainPreview } from '../lib/content.js';
import { announce } from '../lib/dom.js';
import { refreshState } from '../lib/message-state.js';
import { onPush } from '../lib/socket.js';
import {
  addMessage,
  changeMessage,
  confirmPending,
  convName,
  isConvVisible,
  isMine,
  markPeerRead,
  messageFromPush,
  noteSeq,
  setLast,
  setReadState,
  setUnread,
  state,
  userName,
} from '../lib/store.js';
import { CHANGE_PUSHES } from './changes.js';
import { awaitConversation, fetchUser } from './conversations.js';
import { PRESENCE_PUSHES } from './presence.js';
import { scheduleAck, scheduleRead } from './receipts.js';
import { TYPING_PUSHES, stoppedTyping } from './typing.js';

const PUSH_HANDLERS = {
  Msg: onMsgPush,
  Read: onReadPush,
  ...CHANGE_PUSHES,
  ...TYPING_PUSHES,
  ...PRESENCE_PUSHES,
};

export function listenToPushes() {
  for (const [event, handler] of Object.entries(PUSH_HANDLERS)) onPush(event, handler);
}

function onMsgPush(body) {
  if (!Number.isInteger(body.msgId) || !Number.isInteger(body.gid)) return;
  scheduleAck(body.gid, body.msgId);
  const conv = state.convs.get(body.gid);
  if (!conv) {
    awaitConversation('Msg', body);
    return;
  }
  noteSeq(conv, body.seq);
  applyIncoming(conv, messageFromPush(body));
}

function applyIncoming(conv, msg) {
  stoppedTyping(conv.gid, msg.uid);
  if (conv.messages.has(msg.id) || conv.last?.id === msg.id) {
    // a duplicate (at-least-once offline sync), perhaps recalled or edited since
    changeMessage(conv, msg.id, (known) => refreshState(known, msg, { withReactions: false }));
    return;
  }

  // our own message, sent from this tab, echoed before its ack arrived
  const own = isMine(msg) && msg.clientMsgId && state.outbox.get(msg.clientMsgId);
  if (own && own.gid === conv.gid) {
    confirmPending(own, msg.id);
    return;
  }

  if (!isMine(msg)) markPeerRead(conv, msg.id);
  if (conv.loaded) addMessage(conv, msg);
  if (!setLast(conv, msg)) return;
  if (isMine(msg)) {
    setUnread(conv, 0); // the server raises the sender's own watermarks
  } else if (isConvVisible(conv)) {
    setReadState(conv, { needsRead: true });
    scheduleRead(conv);
    announce(`${userName(msg.uid)}: ${plainPreview(msg)}`);
  } else {
    setUnread(conv, conv.unread + 1);
    announce(`New message from ${userName(msg.uid)} in ${convName(conv)}`);
  }
  if (!state.users.has(msg.uid)) fetchUser(msg.uid);
}

function onReadPush(body) {
  const conv = state.convs.get(body.gid);
  if (!conv || !Number.isInteger(body.msgId)) return;
  if (state.me && body.uid === state.me.id) {
    // read on another of my devices
    if (conv.last && body.msgId >= conv.last.id) setUnread(conv, 0);
    return;
  }
  markPeerRead(conv, body.msgId);
}
