// Reactions under a message: one chip per emoji with its count, ours highlighted;
// choosing a chip puts our own on or takes it off. The menu's picker offers the
// common emoji below.

import { h, toast } from '../lib/dom.js';
import { isChangeable } from '../lib/rules.js';
import { toggleReaction } from '../sync/changes.js';

export const COMMON_EMOJI = ['👍', '❤️', '😂', '😮', '😢', '🎉', '🙏', '👀'];

export function react(conv, msg, emoji) {
  toggleReaction(conv, msg, emoji).catch((err) => toast(`Could not react: ${err.message}`, 'error'));
}

export function reactionsEl(conv, msg) {
  if (!msg.reactions.length || msg.recalled) return null;
  return h(
    'div',
    { class: 'reactions', role: 'group', 'aria-label': 'Reactions', 'data-testid': 'reactions' },
    msg.reactions.map((reaction) => chipEl(conv, msg, reaction)),
  );
}

function chipEl(conv, msg, { emoji, count, mine }) {
  const people = `${count} ${count === 1 ? 'person' : 'people'}`;
  return h(
    'button',
    {
      type: 'button',
      class: `reaction${mine ? ' mine' : ''}`,
      'aria-pressed': String(mine),
      'aria-label': `${emoji} from ${mine ? `you${count > 1 ? ` and ${count - 1} more` : ''}` : people}`,
      title: mine ? 'Take your reaction back' : `React with ${emoji}`,
      disabled: !isChangeable(msg),
      'data-testid': 'reaction-chip',
      'data-emoji': emoji,
      'data-mine': String(mine),
      onclick: () => react(conv, msg, emoji),
    },
    h('span', { class: 'reaction-emoji', 'aria-hidden': 'true' }, emoji),
    h('span', { class: 'reaction-count', 'data-testid': 'reaction-count', 'aria-hidden': 'true' }, String(count)),
  );
}
