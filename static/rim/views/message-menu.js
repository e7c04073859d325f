// A message's actions menu: a row of common emoji to react with, then Reply, Edit and
// Recall as far as the rules allow (lib/rules.js). One menu element for the page (a
// popover, so it sits above the timeline), opened from the "⋯" button beside each
// message. It follows the ARIA menu pattern: the arrow keys, Home and End move between
// its items, Escape or Tab closes it, and focus goes back to the button.

import { byId, h, toast } from '../lib/dom.js';
import { reactedWith } from '../lib/message-state.js';
import { canEdit, canRecall } from '../lib/rules.js';
import { setReplyTo } from '../lib/store.js';
import { recallMessage } from '../sync/changes.js';
import { focusEditor, startEditing } from './message-edit.js';
import { COMMON_EMOJI, react } from './reactions.js';

const GAP_PX = 4;

const menu = {
  msgId: null, // the message whose menu is open
  onDocumentPointer: null,
};

const menuEl = () => byId('msg-menu');

/** The "⋯" button beside a message; `redraw()` redraws that message. */
export function menuButton(conv, msg, redraw) {
  return h(
    'button',
    {
      type: 'button',
      class: 'msg-menu-btn',
      'aria-label': 'Message actions',
      'aria-haspopup': 'menu',
      'aria-expanded': String(menu.msgId === msg.id),
      title: 'Actions',
      'data-testid': 'msg-menu-button',
      onclick: (e) => {
        if (menu.msgId === msg.id) closeMenu();
        else openMenu(e.currentTarget, conv, msg, redraw);
      },
    },
    '⋯',
  );
}

const buttonOf = (msgId) =>
  document.querySelector(`#msg-list [data-msg-id="${msgId}"] [data-testid="msg-menu-button"]`);

function item(testid, label, action) {
  return h(
    'button',
    { type: 'button', role: 'menuitem', tabindex: '-1', class: 'menu-item', 'data-testid': testid, onclick: action },
    label,
  );
}

function reactionItems(conv, msg) {
  return h(
    'div',
    { class: 'menu-emoji', role: 'group', 'aria-label': 'React' },
    COMMON_EMOJI.map((emoji) => {
      const mine = reactedWith(msg, emoji);
      return h(
        'button',
        {
          type: 'button',
          role: 'menuitemcheckbox',
          tabindex: '-1',
          class: `menu-emoji-item${mine ? ' mine' : ''}`,
          'aria-checked': String(mine),
          'aria-label': `React with ${emoji}`,
          'data-testid': 'react-option',
          'data-emoji': emoji,
          onclick: () => {
            closeMenu({ refocus: true });
            react(conv, msg, emoji);
          },
        },
        emoji,
      );
    }),
  );
}

/** Recall asks once more inside the menu before it goes ahead. */
function recallItem(conv, msg) {
  const el = item('msg-action-recall', 'Recall', async () => {
    if (el.dataset.confirm !== 'yes') {
      el.dataset.confirm = 'yes';
      el.textContent = 'Recall for everyone?';
      return;
    }
    closeMenu({ refocus: true });
    try {
      await recallMessage(conv, msg);
    } catch (err) {
      toast(`Could not recall the message: ${err.message}`, 'error');
    }
  });
  el.classList.add('danger');
  return el;
}

function menuItems(conv, msg, redraw) {
  return [
    reactionItems(conv, msg),
    item('msg-action-reply', 'Reply', () => {
      closeMenu();
      setReplyTo(conv, msg);
      byId('composer-input').focus();
    }),
    canEdit(msg)
      ? item('msg-action-edit', 'Edit', () => {
          closeMenu();
          startEditing(msg);
          redraw();
          const el = document.querySelector(`#msg-list [data-msg-id="${msg.id}"]`);
          if (el) focusEditor(el);
        })
      : null,
    canRecall(conv, msg) ? recallItem(conv, msg) : null,
  ];
}

function openMenu(button, conv, msg, redraw) {
  closeMenu();
  const el = menuEl();
  el.replaceChildren(...menuItems(conv, msg, redraw).filter(Boolean));
  menu.msgId = msg.id;
  button.setAttribute('aria-expanded', 'true');
  el.showPopover();
  place(el, button);
  menu.onDocumentPointer = (e) => {
    if (!el.contains(e.target) && !buttonOf(msg.id)?.contains(e.target)) closeMenu();
  };
  document.addEventListener('pointerdown', menu.onDocumentPointer, true);
  items()[0]?.focus();
}

/** Below the button, or above it when there is no room; kept inside the window. */
function place(el, button) {
  const anchor = button.getBoundingClientRect();
  const { width, height } = el.getBoundingClientRect();
  const below = anchor.bottom + GAP_PX + height <= window.innerHeight;
  const top = below ? anchor.bottom + GAP_PX : Math.max(GAP_PX, anchor.top - GAP_PX - height);
  const left = Math.min(Math.max(GAP_PX, anchor.right - width), window.innerWidth - width - GAP_PX);
  el.style.top = `${top}px`;
  el.style.left = `${left}px`;
}

const items = () => [...menuEl().querySelectorAll('[role^="menuitem"]')];

/** Closes the menu if open; refocus: focus goes back to its button. */
export function closeMenu({ refocus = false } = {}) {
  if (menu.msgId === null) return;
  const msgId = menu.msgId;
  menu.msgId = null;
  document.removeEventListener('pointerdown', menu.onDocumentPointer, true);
  const el = menuEl();
  if (el.matches(':popover-open')) el.hidePopover();
  el.replaceChildren();
  const button = buttonOf(msgId);
  button?.setAttribute('aria-expanded', 'false');
  if (refocus) button?.focus();
}

function onMenuKey(e) {
  const all = items();
  const index = all.indexOf(document.activeElement);
  const moves = {
    ArrowDown: index + 1,
    ArrowRight: index + 1,
    ArrowUp: index - 1,
    ArrowLeft: index - 1,
    Home: 0,
    End: all.length - 1,
  };
  if (e.key in moves) {
    e.preventDefault();
    all[(moves[e.key] + all.length) % all.length]?.focus();
  } else if (e.key === 'Escape' || e.key === 'Tab') {
    e.preventDefault();
    e.stopPropagation();
    closeMenu({ refocus: true });
  }
}

/** The timeline scrolled or the window changed size: the menu follows its button, or closes once it is out of view. */
function followButton() {
  if (menu.msgId === null) return;
  const button = buttonOf(menu.msgId);
  const box = byId('messages').getBoundingClientRect();
  const at = button?.getBoundingClientRect();
  if (!at || at.bottom < box.top || at.top > box.bottom) closeMenu();
  else place(menuEl(), button);
}

export function initMessageMenu() {
  menuEl().addEventListener('keydown', onMenuKey);
  byId('messages').addEventListener('scroll', followButton);
  window.addEventListener('resize', followButton);
}
