// How a message's state follows the changes made to it (PROTOCOL.md §6.1): recall,
// edit and reactions, whether they come from a push, from one of our own acknowledged
// actions or from a page of history. Each function changes one message object and says
// whether it did, so that a change arriving twice (live, then again from the offline
// sync) or late (after a history page that already had it) changes nothing.

/** Recalled: the content is gone, and so are its reactions. Final. */
export function applyRecall(msg) {
  if (msg.recalled) return false;
  msg.recalled = true;
  msg.content = '';
  msg.editTime = null;
  msg.reactions = [];
  return true;
}

/** New text as of `editTime` (the server's time); an older edit than the one shown is a late replay. */
export function applyEdit(msg, content, editTime) {
  if (msg.recalled || typeof content !== 'string' || typeof editTime !== 'string') return false;
  if (msg.editTime && editTime < msg.editTime) return false;
  if (msg.content === content && msg.editTime === editTime) return false;
  msg.content = content;
  msg.editTime = editTime;
  return true;
}

/**
 * A React push says where one user's emoji now stands (`on`). For our own reactions
 * the message knows that already (`mine`); for another user it knows what their last
 * push said. A push that says what is already known changes nothing. A push about
 * someone not seen before counts as the toggle it is.
 */
export function applyReaction(msg, { uid, emoji, on, byMe }) {
  if (msg.recalled) return false;
  let chip = msg.reactions.find((r) => r.emoji === emoji);
  const key = `${uid} ${emoji}`;
  const before = byMe ? Boolean(chip?.mine) : msg.reactionsSeen.get(key);
  if (!byMe) msg.reactionsSeen.set(key, on);
  if (before === on) return false;
  if (!chip) {
    if (!on) return false;
    chip = { emoji, count: 0, mine: false };
    msg.reactions = [...msg.reactions, chip];
  }
  if (byMe) chip.mine = on;
  chip.count = Math.max(chip.count + (on ? 1 : -1), chip.mine ? 1 : 0);
  if (chip.count === 0) msg.reactions = msg.reactions.filter((r) => r !== chip);
  return true;
}

/** Whether `msg` has `emoji` from us. */
export const reactedWith = (msg, emoji) => msg.reactions.some((r) => r.emoji === emoji && r.mine);

/**
 * The state of the same message read again from the server: a history page (with its
 * reactions) or a Msg push (without). What only moves forward (a recall, a newer edit)
 * never moves back, in case the copy read is older than a change already applied.
 */
export function refreshState(msg, fresh, { withReactions = true } = {}) {
  let changed = false;
  if (fresh.recalled) changed = applyRecall(msg);
  else if (fresh.editTime) changed = applyEdit(msg, fresh.content, fresh.editTime);
  if (withReactions && !msg.recalled) {
    const same = JSON.stringify(msg.reactions) === JSON.stringify(fresh.reactions);
    if (!same) msg.reactions = fresh.reactions;
    changed ||= !same;
  }
  if (fresh.replyTo !== null && msg.replyTo === null) {
    msg.replyTo = fresh.replyTo;
    changed = true;
  }
  return changed;
}
