// Editing one of our messages in place: its bubble holds a text box instead of the
// content; Enter saves (an Edit event), Shift+Enter breaks the line, Escape cancels.
// One message at a time; what was typed survives a redraw of the message.

import { h, toast } from '../lib/dom.js';
import { editMessage } from '../sync/changes.js';

const MAX_CONTENT_BYTES = 65_536;

const editing = {
  msg: null,
  draft: '',
  saving: false,
};

export const isEditing = (msg) => editing.msg === msg;

export function startEditing(msg) {
  editing.msg = msg;
  editing.draft = msg.content;
  editing.saving = false;
}

export function stopEditing() {
  editing.msg = null;
  editing.draft = '';
  editing.saving = false;
}

/** The focused text box of the message being edited, once drawn. */
export function focusEditor(el) {
  const input = el.querySelector('[data-testid="msg-edit-input"]');
  if (!input) return;
  input.focus();
  input.setSelectionRange(input.value.length, input.value.length);
}

/** The editor inside the bubble; `done()` redraws the message once editing ends. */
export function editorEl(conv, msg, done) {
  const input = h('textarea', {
    class: 'msg-edit-input',
    rows: '1',
    'aria-label': 'Edit message',
    'aria-describedby': 'msg-edit-hint',
    'data-testid': 'msg-edit-input',
  });
  input.value = editing.draft;
  input.disabled = editing.saving;

  // editing ends: the message is drawn again, and its menu button has the focus
  const finish = () => {
    stopEditing();
    done();
    document.querySelector(`#msg-list [data-msg-id="${msg.id}"] [data-testid="msg-menu-button"]`)?.focus();
  };

  const save = async () => {
    const text = input.value;
    if (text === msg.content) {
      finish();
      return;
    }
    const problem = !text.trim()
      ? 'A message cannot be empty: recall it instead.'
      : new TextEncoder().encode(text).length > MAX_CONTENT_BYTES
        ? 'This message is too long.'
        : null;
    if (problem) {
      toast(problem, 'error');
      return;
    }
    editing.saving = true;
    input.disabled = true;
    try {
      await editMessage(conv, msg, text);
    } catch (err) {
      toast(`Could not edit the message: ${err.message}`, 'error');
      if (err.retryable && isEditing(msg)) {
        // offline or rate-limited: the text stays, to be saved again
        editing.saving = false;
        input.disabled = false;
        input.focus();
        return;
      }
    }
    if (isEditing(msg)) finish();
  };

  input.addEventListener('input', () => {
    editing.draft = input.value;
  });
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      save();
    } else if (e.key === 'Escape') {
      e.preventDefault();
      e.stopPropagation();
      finish();
    }
  });
  return h(
    'div',
    { class: 'msg-edit' },
    input,
    h(
      'div',
      { class: 'msg-edit-bar' },
      h('span', { id: 'msg-edit-hint', class: 'msg-edit-hint' }, 'Enter to save · Esc to cancel'),
      h(
        'button',
        { type: 'button', class: 'link-btn', 'data-testid': 'msg-edit-cancel', onclick: finish },
        'Cancel',
      ),
      h('button', { type: 'button', class: 'link-btn', 'data-testid': 'msg-edit-save', onclick: save }, 'Save'),
    ),
  );
}
