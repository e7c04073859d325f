// Group dialogs: "New group" (a name and friends to add), and the details dialog of
// the open conversation (members; for admins renaming, adding and removing; leaving).

import { avatarEl } from '../lib/avatar.js';
import { announce, byId, formError, h, toast } from '../lib/dom.js';
import { convName, displayName, myRole, state } from '../lib/store.js';
import { refreshContacts } from '../sync/contacts.js';
import { loadMembers, refreshConversations } from '../sync/conversations.js';
import { ADD, REMOVE, changeMembers, createGroup, leave, rename } from '../sync/groups.js';
import { personRow } from './contacts.js';
import { openConversation } from './pane.js';
import { selectTab } from './tabs.js';

const ADMIN = 2;

const infoDialog = () => byId('group-info-dialog');
const infoError = () => formError(infoDialog());
const infoConv = () => state.convs.get(Number(infoDialog().dataset.gid));

function friendPicker(list, friends, prefix) {
  list.replaceChildren(
    ...friends.map((user) => {
      const id = `${prefix}-${user.id}`;
      return h(
        'li',
        null,
        h('input', { type: 'checkbox', id, value: user.id, 'data-testid': `${prefix}-option`, 'data-uid': user.id }),
        h(
          'label',
          { for: id },
          avatarEl(displayName(user), user.avatar, 'sm'),
          h('span', null, displayName(user)),
          h('span', { class: 'person-account' }, `@${user.account}`),
        ),
      );
    }),
  );
}

const checkedUids = (list) =>
  [...list.querySelectorAll('input[type=checkbox]:checked')].map((box) => Number(box.value));

// ---------------------------------------------------------------------------
// New group

function pickFriendsToCreate() {
  const list = byId('group-create-friends');
  const keep = new Set(checkedUids(list));
  friendPicker(list, state.friends, 'group-create');
  for (const box of list.querySelectorAll('input')) box.checked = keep.has(Number(box.value));
  byId('group-create-nofriends').hidden = state.friends.length > 0;
}

function openCreateGroup() {
  const dialog = byId('group-create-dialog');
  const form = byId('group-create-form');
  form.reset();
  formError(form).textContent = '';
  pickFriendsToCreate();
  dialog.showModal();
  byId('group-create-name').focus();
  // the friend list may be stale: redrawn when fresh, keeping what was ticked meanwhile
  refreshContacts().then(() => {
    if (dialog.open) pickFriendsToCreate();
  });
}

async function submitCreateGroup(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const error = formError(form);
  const name = byId('group-create-name').value.trim();
  const uids = checkedUids(byId('group-create-friends'));
  if (!name) {
    error.textContent = 'Give the group a name.';
    byId('group-create-name').focus();
    return;
  }
  const submit = form.querySelector('[type=submit]');
  submit.disabled = true;
  try {
    const gid = await createGroup(name, uids);
    byId('group-create-dialog').close();
    await refreshConversations();
    selectTab('chats');
    if (state.convs.has(gid)) openConversation(gid);
    toast(`Group “${name}” created.`);
  } catch (err) {
    error.textContent = err.message;
  } finally {
    submit.disabled = false;
  }
}

// ---------------------------------------------------------------------------
// Details of the open conversation

async function openInfo() {
  const conv = state.convs.get(state.openGid);
  if (!conv) return;
  const dialog = infoDialog();
  dialog.dataset.gid = String(conv.gid);
  infoError().textContent = '';
  // reset here, not in renderInfo: the redraw once members arrive must not undo a first click
  const leaveButton = byId('group-leave');
  delete leaveButton.dataset.confirm;
  leaveButton.textContent = 'Leave group';
  renderInfo(conv);
  dialog.showModal();
  try {
    await loadMembers(conv);
    await refreshContacts();
  } catch (err) {
    infoError().textContent = err.message;
  }
  if (dialog.open && dialog.dataset.gid === String(conv.gid)) renderInfo(conv);
}

function memberRow(conv, row, admin) {
  const self = row.user.id === state.me.id;
  return personRow(
    row.user,
    'member-item',
    row.role === ADMIN ? h('span', { class: 'tag', 'data-testid': 'member-admin' }, 'Admin') : null,
    self ? h('span', { class: 'tag muted' }, 'You') : null,
    admin && !self
      ? h(
          'button',
          {
            type: 'button',
            class: 'btn ghost small',
            'data-testid': 'member-remove',
            'aria-label': `Remove ${displayName(row.user)}`,
            onclick: () => submitMembers(conv, [row.user.id], REMOVE),
          },
          'Remove',
        )
      : null,
  );
}

function renderInfo(conv) {
  const isGroup = conv.group.mode === 2;
  const admin = isGroup && myRole(conv) === ADMIN;
  byId('group-info-title').textContent = isGroup ? convName(conv) : `Chat with ${convName(conv)}`;

  byId('group-rename-form').hidden = !admin;
  const nameInput = byId('group-rename-name');
  if (admin && document.activeElement !== nameInput) nameInput.value = conv.group.name || '';

  const members = byId('group-members');
  const rows = conv.members || [];
  members.replaceChildren(
    ...[...rows]
      .sort((a, b) => b.role - a.role || (a.user.name || '').localeCompare(b.user.name || ''))
      .map((row) => memberRow(conv, row, admin)),
  );
  if (!conv.members) members.replaceChildren(h('li', { class: 'muted small' }, 'Loading members…'));

  const inGroup = new Set(rows.map((row) => row.user.id));
  const candidates = state.friends.filter((f) => !inGroup.has(f.id));
  byId('group-add-form').hidden = !admin || candidates.length === 0;
  friendPicker(byId('group-add-friends'), candidates, 'group-add');
  byId('group-leave').hidden = !isGroup;
}

async function submitMembers(conv, uids, opType) {
  infoError().textContent = '';
  try {
    await changeMembers(conv, uids, opType);
    renderInfo(conv);
    announce(opType === ADD ? 'Members added' : 'Member removed');
  } catch (err) {
    infoError().textContent = err.message;
  }
}

async function submitAddMembers(event) {
  event.preventDefault();
  const conv = infoConv();
  const uids = checkedUids(byId('group-add-friends'));
  if (!conv || !uids.length) return;
  await submitMembers(conv, uids, ADD);
}

async function submitRename(event) {
  event.preventDefault();
  const conv = infoConv();
  const name = byId('group-rename-name').value.trim();
  if (!conv || !name) {
    infoError().textContent = 'The group needs a name.';
    return;
  }
  try {
    await rename(conv, name);
    renderInfo(conv);
    toast('Group renamed.');
  } catch (err) {
    infoError().textContent = err.message;
  }
}

async function leaveGroup() {
  const conv = infoConv();
  if (!conv) return;
  const button = byId('group-leave');
  if (button.dataset.confirm !== 'yes') {
    // two-step confirmation inside the dialog (no blocking window.confirm)
    button.dataset.confirm = 'yes';
    button.textContent = `Really leave “${convName(conv)}”?`;
    return;
  }
  try {
    await leave(conv);
    infoDialog().close();
    toast(`You left “${convName(conv)}”.`);
  } catch (err) {
    infoError().textContent = err.message;
  }
}

export function initGroups() {
  byId('new-group-btn').addEventListener('click', openCreateGroup);
  byId('group-create-form').addEventListener('submit', submitCreateGroup);
  byId('info-btn').addEventListener('click', openInfo);
  byId('group-rename-form').addEventListener('submit', submitRename);
  byId('group-add-form').addEventListener('submit', submitAddMembers);
  byId('group-leave').addEventListener('click', leaveGroup);
}
