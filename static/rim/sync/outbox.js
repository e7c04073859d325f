// Sending own messages: shown at once as pending, sent as a Msg event, confirmed by
// the MsgAck's serverMsgId (or by the push echo, whichever comes first). A message
// stays in the outbox until then and is sent again after every login, under the same
// clientMsgId so the server stores it once.

import { toast } from '../lib/dom.js';
import { isLoggedIn, newClientMsgId, request } from '../lib/socket.js';
import { addPending, confirmPending, ownMessage, setMessageStatus, state } from '../lib/store.js';

const RETRY_MS = 1000;
const inFlight = new Set(); // clientMsgIds whose Msg awaits its ack

/** replyTo: the id of the message this one answers, or null. */
export function sendMessage(conv, kind, content, replyTo = null) {
  const msg = ownMessage(conv, kind, content, newClientMsgId(), replyTo);
  addPending(conv, msg);
  transmit(msg);
}

/** After a login: everything still pending goes out again. */
export function resendPending() {
  for (const msg of state.outbox.values()) if (msg.status === 'pending') transmit(msg);
}

async function transmit(msg) {
  if (inFlight.has(msg.clientMsgId) || !isLoggedIn()) return; // resent after the next login
  inFlight.add(msg.clientMsgId);
  let ack;
  try {
    const reply = msg.replyTo === null ? {} : { replyTo: msg.replyTo };
    ack = await request('Msg', {
      kind: msg.kind,
      gid: msg.gid,
      content: msg.content,
      clientMsgId: msg.clientMsgId,
      ...reply,
    });
  } catch {
    return; // still pending: resent after the next login
  } finally {
    inFlight.delete(msg.clientMsgId);
  }
  if (ack.content === 'Ok' && Number.isInteger(ack.serverMsgId)) {
    confirmPending(msg, ack.serverMsgId);
  } else if (ack.content === 'rate_limited') {
    setTimeout(() => transmit(msg), RETRY_MS);
  } else {
    const reason = ack.detail || ack.content;
    setMessageStatus(msg, 'failed', reason);
    toast(`Message not sent: ${reason}`, 'error');
  }
}

export function retrySend(msg) {
  setMessageStatus(msg, 'pending');
  transmit(msg);
}
