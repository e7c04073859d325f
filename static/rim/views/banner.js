// The connection banner: online, connecting, or offline with a countdown to the next
// attempt and a "Retry now" button.

import { byId } from '../lib/dom.js';
import { retryNow } from '../lib/socket.js';
import { state, subscribe } from '../lib/store.js';

const countdown = { timer: 0 };

function render() {
  const { kind, enabled, everOnline, retryAt } = state.connection;
  byId('banner').dataset.state = kind;
  byId('banner-retry').hidden = kind !== 'offline';
  const text = byId('banner-text');
  if (kind === 'online') {
    text.textContent = 'Online';
  } else if (kind === 'connecting') {
    text.textContent = everOnline ? 'Reconnecting…' : 'Connecting…';
  } else if (!enabled) {
    text.textContent = 'Offline';
  } else {
    const secs = Math.max(1, Math.ceil((retryAt - Date.now()) / 1000));
    text.textContent = `Offline — reconnecting in ${secs} s`;
  }
  document.body.dataset.connection = kind;

  const counting = kind === 'offline' && enabled;
  if (counting && !countdown.timer) countdown.timer = setInterval(render, 1000);
  if (!counting) {
    clearInterval(countdown.timer);
    countdown.timer = 0;
  }
}

export function initBanner() {
  byId('banner-retry').addEventListener('click', retryNow);
  subscribe('connection', render);
  render();
}

export function showBanner(shown) {
  byId('banner').hidden = !shown;
}
