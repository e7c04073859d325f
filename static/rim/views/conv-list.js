// The conversation list in the sidebar, its filter, and the unread total (tab count
// and page title). Redrawn whole from the store whenever the list changes. A
// one-to-one chat shows whether its other person is online.

import { avatarEl } from '../lib/avatar.js';
import { plainPreview } from '../lib/content.js';
import { byId, h } from '../lib/dom.js';
import {
  convAvatarUrl,
  convName,
  isMine,
  newestOf,
  setFilter,
  sortedConvs,
  state,
  subscribe,
  userName,
} from '../lib/store.js';
import { listTime } from '../lib/time.js';
import { withPresence } from './presence.js';

const countText = (n) => (n > 99 ? '99+' : String(n));

function render(onOpen) {
  const list = byId('conv-list');
  const focused = document.activeElement?.closest?.('#conv-list [data-gid]')?.dataset.gid;
  const filter = state.filter.toLowerCase();
  const convs = sortedConvs().filter((c) => !filter || convName(c).toLowerCase().includes(filter));
  list.replaceChildren(...convs.map((conv) => convItem(conv, onOpen)));
  byId('conv-empty').hidden = state.convs.size > 0;
  if (focused) list.querySelector(`[data-gid="${CSS.escape(focused)}"]`)?.focus();

  let total = 0;
  for (const conv of state.convs.values()) total += conv.unread;
  const count = byId('chats-count');
  count.hidden = total === 0;
  count.textContent = countText(total);
  count.setAttribute('aria-label', `${total} unread`);
  document.title = total ? `(${total}) rim` : 'rim';
}

function preview(conv, newest) {
  if (!newest) return conv.group.mode === 2 ? 'New group' : 'No messages yet';
  const who = isMine(newest) ? 'You: ' : conv.group.mode === 2 ? `${userName(newest.uid)}: ` : '';
  return who + plainPreview(newest);
}

function convItem(conv, onOpen) {
  const name = convName(conv);
  const newest = newestOf(conv);
  const unread = conv.unread;
  const open = conv.gid === state.openGid;
  return h(
    'li',
    null,
    h(
      'button',
      {
        type: 'button',
        class: `conv${open ? ' active' : ''}${unread ? ' has-unread' : ''}`,
        'aria-current': open ? 'true' : null,
        'data-testid': 'conv-item',
        'data-gid': conv.gid,
        'data-mode': conv.group.mode,
        onclick: () => onOpen(conv.gid),
      },
      conv.group.mode === 1 && conv.peer
        ? withPresence(avatarEl(name, convAvatarUrl(conv)), conv.peer.id)
        : avatarEl(name, convAvatarUrl(conv)),
      h(
        'span',
        { class: 'conv-body' },
        h(
          'span',
          { class: 'conv-top' },
          h('span', { class: 'conv-name', 'data-testid': 'conv-name' }, name),
          newest ? h('time', { class: 'conv-time', datetime: newest.createTime }, listTime(newest.createTime)) : null,
        ),
        h(
          'span',
          { class: 'conv-bottom' },
          h('span', { class: 'conv-preview', 'data-testid': 'conv-preview' }, preview(conv, newest)),
          unread
            ? h(
                'span',
                { class: 'badge', 'data-testid': 'unread-badge', 'aria-label': `${unread} unread` },
                countText(unread),
              )
            : null,
        ),
      ),
    ),
  );
}

/** Focus back on the open conversation's row (leaving the pane on a narrow screen). */
export function focusOpenItem() {
  byId('conv-list').querySelector(`[data-gid="${state.openGid}"]`)?.focus();
}

/** onOpen(gid): what choosing a conversation does (the pane opens it). */
export function initConvList(onOpen) {
  const draw = () => render(onOpen);
  subscribe('convs', draw);
  subscribe('users', draw);
  subscribe('presence', draw);
  byId('conv-filter').addEventListener('input', (e) => setFilter(e.currentTarget.value.trim()));
}
