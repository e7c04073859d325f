// Delivered (Ack) and read (Read) watermarks sent to the server: acks are batched per
// group for 200 ms, a Read goes out only while the conversation is really in view.

import { isLoggedIn, request } from '../lib/socket.js';
import { ackedUpTo, isConvVisible, raiseAcked, setReadState, setUnread, state } from '../lib/store.js';

const RETRY_MS = 1000;

const receipts = {
  ackQueue: new Map(), // gid -> highest msgId to acknowledge
  ackTimer: 0,
  readTimers: new Map(), // gid -> timer of a scheduled Read
};

export function scheduleAck(gid, msgId) {
  if (!Number.isInteger(gid) || !Number.isInteger(msgId)) return;
  if (ackedUpTo(gid) >= msgId) return;
  receipts.ackQueue.set(gid, Math.max(receipts.ackQueue.get(gid) || 0, msgId));
  if (!receipts.ackTimer) receipts.ackTimer = setTimeout(flushAcks, 200);
}

export function flushAcks() {
  clearTimeout(receipts.ackTimer);
  receipts.ackTimer = 0;
  if (!isLoggedIn()) return;
  for (const [gid, msgId] of [...receipts.ackQueue]) {
    receipts.ackQueue.delete(gid);
    if (ackedUpTo(gid) >= msgId) continue;
    request('Ack', { gid, msgId })
      .then((ack) => {
        if (ack.content === 'Ok') raiseAcked(gid, msgId);
        else if (ack.content === 'rate_limited') setTimeout(() => scheduleAck(gid, msgId), RETRY_MS);
      })
      .catch(() => scheduleAck(gid, msgId));
  }
}

export function scheduleRead(conv) {
  if (receipts.readTimers.has(conv.gid)) return;
  receipts.readTimers.set(
    conv.gid,
    setTimeout(() => {
      receipts.readTimers.delete(conv.gid);
      sendRead(conv);
    }, 150),
  );
}

async function sendRead(conv) {
  if (!isConvVisible(conv) || !conv.last) return;
  const newest = conv.last.id;
  if (!(conv.unread > 0 || conv.needsRead) || newest <= conv.readSent) {
    setUnread(conv, 0);
    return;
  }
  if (!isLoggedIn()) return; // retried after the next login
  const previous = conv.readSent;
  setReadState(conv, { readSent: newest, needsRead: false });
  setUnread(conv, 0);
  try {
    const ack = await request('Read', { gid: conv.gid, msgId: newest });
    if (ack.content === 'Ok') {
      raiseAcked(conv.gid, newest); // a Read raises the delivered watermark too
    } else {
      setReadState(conv, { readSent: previous });
      if (ack.content === 'rate_limited') {
        setReadState(conv, { needsRead: true });
        setTimeout(() => scheduleRead(conv), RETRY_MS);
      }
    }
  } catch {
    setReadState(conv, { readSent: previous, needsRead: true });
  }
}

export function readOpenConversation() {
  const conv = state.convs.get(state.openGid);
  if (conv && isConvVisible(conv)) scheduleRead(conv);
}

/** Logging out: nothing more may be sent, and the queued acks belong to the old session. */
export function dropReceipts() {
  clearTimeout(receipts.ackTimer);
  receipts.ackTimer = 0;
  for (const timer of receipts.readTimers.values()) clearTimeout(timer);
  receipts.readTimers.clear();
  receipts.ackQueue.clear();
}
