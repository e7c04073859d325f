// The Contacts tab: find a user by account and ask them to be friends, answer friend
// requests, and the friend list with a way to message each friend.

import { avatarEl } from '../lib/avatar.js';
import { announce, byId, h, toast } from '../lib/dom.js';
import { directWith, displayName, state, subscribe } from '../lib/store.js';
import { ACCEPT, REJECT, addFriend, answerRequest, findByAccount, refreshContacts } from '../sync/contacts.js';
import { refreshConversations } from '../sync/conversations.js';
import { openConversation } from './pane.js';
import { withPresence } from './presence.js';
import { selectTab } from './tabs.js';

/** A person in a list (contacts, search result, group members), with actions on the right. */
export function personRow(user, testid, ...actions) {
  const name = displayName(user);
  return h(
    'li',
    { class: 'person', 'data-testid': testid, 'data-uid': user.id },
    withPresence(avatarEl(name, user.avatar), user.id),
    h(
      'span',
      { class: 'person-text' },
      h('span', { class: 'person-name' }, name),
      h('span', { class: 'person-account' }, `@${user.account}`),
    ),
    h('span', { class: 'person-actions' }, ...actions),
  );
}

/** look: primary, secondary or ghost; label: the accessible name where the text alone is vague. */
const smallButton = (look, testid, label, text, onclick) =>
  h(
    'button',
    { type: 'button', class: `btn ${look} small`, 'data-testid': testid, 'aria-label': label, onclick },
    text,
  );

const acceptButton = (user, label, text) =>
  smallButton('primary', 'request-accept', label, text, (e) => answer(user, ACCEPT, e.currentTarget));

const messageButton = (user, label) =>
  smallButton('secondary', 'friend-message', label, 'Message', () => openDirect(user));

const requestedNote = () => h('span', { class: 'muted small', 'data-testid': 'friend-requested' }, 'Request sent');

function render() {
  byId('request-list').replaceChildren(
    ...state.requests.map((user) =>
      personRow(
        user,
        'request-item',
        acceptButton(user, `Accept ${displayName(user)}`, 'Accept'),
        smallButton('ghost', 'request-reject', `Reject ${displayName(user)}`, 'Reject', (e) =>
          answer(user, REJECT, e.currentTarget),
        ),
      ),
    ),
  );
  byId('request-empty').hidden = state.requests.length > 0;
  const count = byId('requests-count');
  count.hidden = state.requests.length === 0;
  count.textContent = String(state.requests.length);
  count.setAttribute('aria-label', `${state.requests.length} friend requests`);

  byId('friend-list').replaceChildren(
    ...[...state.friends]
      .sort((a, b) => displayName(a).localeCompare(displayName(b)))
      .map((user) => personRow(user, 'friend-item', messageButton(user, `Message ${displayName(user)}`))),
  );
  byId('friend-empty').hidden = state.friends.length > 0;
}

async function answer(user, status, button) {
  button.disabled = true;
  try {
    await answerRequest(user, status);
    toast(status === ACCEPT ? `You and ${displayName(user)} are now friends.` : 'Request rejected.');
    await refreshContacts();
    if (status === ACCEPT) await refreshConversations();
  } catch (err) {
    button.disabled = false;
    toast(err.message, 'error');
  }
}

async function openDirect(user) {
  let conv = directWith(user.id);
  if (!conv) {
    await refreshConversations();
    conv = directWith(user.id);
  }
  if (!conv) {
    toast(`No conversation with ${displayName(user)} yet.`, 'error');
    return;
  }
  selectTab('chats');
  openConversation(conv.gid);
}

async function sendRequest(user, button) {
  button.disabled = true;
  try {
    await addFriend(user);
    button.replaceWith(requestedNote());
    announce(`Friend request sent to ${displayName(user)}`);
  } catch (err) {
    button.disabled = false;
    toast(err.message, 'error');
  }
}

/** What can be done with a user found by account, given what we already are to each other. */
function searchAction(user) {
  if (user.id === state.me.id) return h('span', { class: 'muted small' }, 'That’s you');
  if (state.friends.some((f) => f.id === user.id)) return messageButton(user, null);
  if (state.requests.some((r) => r.id === user.id)) return acceptButton(user, null, 'Accept request');
  if (state.sentRequests.has(user.id)) return requestedNote();
  return smallButton('primary', 'friend-add', null, 'Add friend', (e) => sendRequest(user, e.currentTarget));
}

async function searchAccount(event) {
  event.preventDefault();
  const input = byId('search-account');
  const account = input.value.trim();
  const box = byId('search-result');
  if (!account) {
    input.focus();
    return;
  }
  box.replaceChildren(h('p', { class: 'muted small' }, 'Searching…'));
  let user;
  try {
    user = await findByAccount(account);
  } catch (err) {
    box.replaceChildren(
      h(
        'p',
        { class: 'muted small', 'data-testid': 'search-none' },
        err.status === 404 ? `No user with the account “${account}”.` : err.message,
      ),
    );
    return;
  }
  box.replaceChildren(h('ul', { class: 'people' }, personRow(user, 'search-user', searchAction(user))));
}

export function clearSearch() {
  byId('search-result').replaceChildren();
}

export function initContacts() {
  subscribe('contacts', render);
  subscribe('presence', render);
  byId('search-form').addEventListener('submit', searchAccount);
  byId('contacts-refresh').addEventListener('click', () => {
    refreshContacts();
    refreshConversations();
  });
}
