// The WebSocket at /ws: frames of the wire protocol, the connection's life (Login, a
// Heart every 30 s, one MsgAck awaited per client event, reconnection with jittered
// exponential backoff) and the push dispatch table. The connection's state for the
// banner is in the store (state.connection); what a login or a push means to the
// client is told to this module by the modules that care (onPush, configureSocket).

import { toast } from './dom.js';
import { setConnection, state } from './store.js';

const HEART_MS = 30_000;
const ACK_TIMEOUT_MS = 20_000;
const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 10_000;

class NetError extends Error {}

const net = {
  ws: null,
  loggedIn: false,
  attempt: 0,
  retryTimer: 0,
  heartTimer: 0,
  pending: new Map(), // clientMsgId -> {resolve, reject, timer, ws}
};

const hooks = {
  loggedIn: () => {}, // (reconnected) after every successful Login
  authFailed: () => {}, // the server refused the token
};

/** event name -> handler(body): the pushes this client understands; others are ignored. */
const pushHandlers = new Map();

export function onPush(event, handler) {
  pushHandlers.set(event, handler);
}

/** Hands a push to its handler; also used to replay pushes that had to wait. */
export function dispatchPush(event, body) {
  pushHandlers.get(event)?.(body);
}

export function configureSocket({ loggedIn, authFailed }) {
  hooks.loggedIn = loggedIn;
  hooks.authFailed = authFailed;
}

export const isLoggedIn = () => net.loggedIn;
export const isConnected = () => net.ws !== null;

// ---------------------------------------------------------------------------
// Frames

export function newClientMsgId() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** A client event's frame, every body field present as the protocol wants. */
function buildFrame(event, uid, fields) {
  const clientMsgId = fields.clientMsgId || newClientMsgId();
  const body = { kind: 'Text', uid, gid: null, content: '', msgId: null, ...fields, clientMsgId };
  return { clientMsgId, text: JSON.stringify({ event, body }) };
}

/** A server frame: {push: {event, body}}, {ack}, or null for anything else. */
function parseFrame(data) {
  if (typeof data !== 'string') return null;
  let frame;
  try {
    frame = JSON.parse(data);
  } catch {
    return null;
  }
  if (!frame || typeof frame !== 'object') return null;
  if (typeof frame.event === 'string') {
    return { push: { event: frame.event, body: frame.body && typeof frame.body === 'object' ? frame.body : {} } };
  }
  if (frame.kind === 'Ack' && typeof frame.clientMsgId === 'string') return { ack: frame };
  return null;
}

// ---------------------------------------------------------------------------
// Connection

function wsUrl() {
  const path = document.body.dataset.wsPath || '/ws';
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${path}`;
}

/** Starts connecting for a fresh session, and keeps reconnecting until stop(). */
export function start() {
  net.attempt = 0;
  setConnection({ enabled: true, everOnline: false });
  connect();
}

function connect() {
  clearTimeout(net.retryTimer);
  if (!state.connection.enabled || net.ws) return;
  setConnection({ kind: 'connecting' });
  let ws;
  try {
    ws = new WebSocket(wsUrl());
  } catch {
    scheduleReconnect();
    return;
  }
  net.ws = ws;
  ws.addEventListener('open', () => onSocketOpen(ws));
  ws.addEventListener('message', (event) => onSocketFrame(ws, event.data));
  ws.addEventListener('close', () => onSocketClose(ws));
}

export function stop() {
  setConnection({ enabled: false });
  clearTimeout(net.retryTimer);
  clearInterval(net.heartTimer);
  const ws = net.ws;
  if (ws) {
    onSocketClose(ws);
    try {
      ws.close(1000, 'logout');
    } catch {
      // already closed
    }
  }
  setConnection({ kind: 'offline' });
}

function scheduleReconnect() {
  const base = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** net.attempt);
  const delay = Math.min(BACKOFF_CAP_MS, Math.round(base * (0.8 + Math.random() * 0.4)));
  net.attempt += 1;
  clearTimeout(net.retryTimer);
  net.retryTimer = setTimeout(connect, delay);
  setConnection({ kind: 'offline', retryAt: Date.now() + delay });
}

/** Skips the backoff wait (the user asked, or the browser says the network is back). */
export function retryNow() {
  if (!state.connection.enabled || net.ws) return;
  net.attempt = 0;
  connect();
}

/** Sends one client event; resolves with its MsgAck (whatever its content). */
export function request(event, fields) {
  const ws = net.ws;
  if (!ws || ws.readyState !== WebSocket.OPEN || !state.me) {
    return Promise.reject(new NetError('offline'));
  }
  if (event !== 'Login' && event !== 'Heart' && !net.loggedIn) {
    return Promise.reject(new NetError('not logged in'));
  }
  const { clientMsgId, text } = buildFrame(event, state.me.id, fields);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      net.pending.delete(clientMsgId);
      reject(new NetError('timeout'));
      // an unanswered event means the connection is not healthy: start over
      if (net.ws === ws) ws.close(4000, 'ack timeout');
    }, ACK_TIMEOUT_MS);
    net.pending.set(clientMsgId, { resolve, reject, timer, ws });
    try {
      ws.send(text);
    } catch (err) {
      clearTimeout(timer);
      net.pending.delete(clientMsgId);
      reject(new NetError(String(err)));
    }
  });
}

/** Logout on the socket; from then on nothing else goes out on this connection. */
export function sayGoodbye() {
  const bye = request('Logout', {});
  net.loggedIn = false;
  return bye.catch(() => {});
}

async function onSocketOpen(ws) {
  if (ws !== net.ws) return;
  let ack;
  try {
    ack = await request('Login', { content: state.token });
  } catch {
    return; // the close handler schedules the retry
  }
  if (ws !== net.ws) return;
  if (ack.content !== 'Ok') {
    if (ack.content === 'auth_failed') {
      hooks.authFailed();
    } else {
      toast(`Could not log in to the message service: ${ack.detail || ack.content}`, 'error');
      ws.close(4001, 'login failed');
    }
    return;
  }
  net.loggedIn = true;
  net.attempt = 0;
  const reconnected = state.connection.everOnline;
  setConnection({ kind: 'online', everOnline: true });
  clearInterval(net.heartTimer);
  net.heartTimer = setInterval(sendHeart, HEART_MS);
  hooks.loggedIn(reconnected);
}

function onSocketFrame(ws, data) {
  if (ws !== net.ws) return;
  const frame = parseFrame(data);
  if (frame?.push) {
    dispatchPush(frame.push.event, frame.push.body);
  } else if (frame?.ack) {
    const waiter = net.pending.get(frame.ack.clientMsgId);
    if (!waiter) return;
    net.pending.delete(frame.ack.clientMsgId);
    clearTimeout(waiter.timer);
    waiter.resolve(frame.ack);
  }
}

function onSocketClose(ws) {
  if (ws !== net.ws) return;
  net.ws = null;
  net.loggedIn = false;
  clearInterval(net.heartTimer);
  for (const [id, waiter] of net.pending) {
    if (waiter.ws !== ws) continue;
    clearTimeout(waiter.timer);
    net.pending.delete(id);
    waiter.reject(new NetError('disconnected'));
  }
  if (state.connection.enabled) scheduleReconnect();
  else setConnection({ kind: 'offline' });
}

function sendHeart() {
  request('Heart', {}).catch(() => {});
}
