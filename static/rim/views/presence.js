// Presence on screen: a dot on the avatar of the people of one-to-one chats and of
// friends (online or offline), and "online" / "last seen …" in a one-to-one chat's
// header.

import { byId, h } from '../lib/dom.js';
import { state, subscribe } from '../lib/store.js';
import { lastSeenText } from '../lib/time.js';

const presenceText = ({ online, lastSeen }) => (online ? 'online' : lastSeenText(lastSeen));

/** An avatar with the user's presence dot, if the client knows it. */
export function withPresence(avatar, uid) {
  const presence = state.presence.get(uid);
  if (!presence) return avatar;
  const text = presenceText(presence);
  return h(
    'span',
    { class: 'avatar-wrap' },
    avatar,
    h('span', {
      class: `presence-dot${presence.online ? ' online' : ''}`,
      role: 'img',
      'aria-label': text,
      title: text,
      'data-testid': 'presence-dot',
      'data-online': String(presence.online),
    }),
  );
}

const openPeer = () => {
  const conv = state.convs.get(state.openGid);
  return conv?.group.mode === 1 ? conv.peer : null;
};

function renderHeader() {
  const peer = openPeer();
  const presence = peer ? state.presence.get(peer.id) : null;
  const el = byId('chat-presence');
  el.textContent = presence ? presenceText(presence) : '';
  el.dataset.online = presence ? String(presence.online) : '';
}

export function initPresence() {
  subscribe('presence', renderHeader);
  subscribe('open', renderHeader);
  subscribe('conv', renderHeader);
}
