// Which changes a message's menu offers, by the server's rules (PROTOCOL.md §6.1): the
// sender recalls within RIM_RECALL_WINDOW and edits text within RIM_EDIT_WINDOW (the
// page says how long they are); a group's admin recalls any message at any time. The
// server decides in the end: an action offered a moment too late is refused with
// too_late.

import { isMine, myRole } from './store.js';
import { secondsSince } from './time.js';

const ADMIN = 2;
const EDITABLE_KINDS = new Set(['Text', 'RichText']);

function windowSeconds(name, fallback) {
  const value = Number.parseFloat(document.body.dataset[name]);
  return Number.isFinite(value) ? value : fallback;
}

const RECALL_WINDOW = windowSeconds('recallWindow', 120);
const EDIT_WINDOW = windowSeconds('editWindow', 900);

/** A stored message that is still there: the only kind a change can be made to. */
export const isChangeable = (msg) => Number.isInteger(msg.id) && !msg.recalled;

export const canEdit = (msg) =>
  isChangeable(msg) && isMine(msg) && EDITABLE_KINDS.has(msg.kind) && secondsSince(msg.createTime) < EDIT_WINDOW;

/**
 * One-to-one chats make both people admins on the server; the menu offers an admin's
 * recall only in groups, where someone was made admin on purpose.
 */
export const canRecall = (conv, msg) =>
  isChangeable(msg) &&
  ((isMine(msg) && secondsSince(msg.createTime) < RECALL_WINDOW) ||
    (conv.group.mode === 2 && myRole(conv) === ADMIN));
