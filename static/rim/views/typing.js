// "… is typing" in the open conversation's header, in place of its subtitle while
// someone types (sync/typing.js says who, and for how long).

import { byId } from '../lib/dom.js';
import { state, subscribe, userName } from '../lib/store.js';

function typingText(names) {
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  return `${names[0]}, ${names[1]} and ${names.length - 2} more are typing…`;
}

function render() {
  const typists = state.typing.get(state.openGid);
  const names = typists ? [...typists].map(userName) : [];
  byId('typing').textContent = names.length ? typingText(names) : '';
  byId('chat-sub-line').classList.toggle('is-typing', names.length > 0);
}

export function initTyping() {
  subscribe('typing', render);
  subscribe('open', render);
  subscribe('users', render);
}
