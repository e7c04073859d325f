// A found message's text with the matched parts marked: text nodes and <mark>
// elements, never HTML. The server gives the matches as [start, end) offsets in code
// points; a long text is cut to a window around its first match.

import { h } from './dom.js';

// How many code points a result shows at most, and how many of them before its first match.
const WINDOW = 180;
const LEAD = 40;

/** The matches as sorted, non-overlapping [start, end) pairs within `length`; bad ones dropped. */
export function cleanMatches(matches, length) {
  const pairs = (Array.isArray(matches) ? matches : [])
    .filter((m) => Array.isArray(m) && Number.isInteger(m[0]) && Number.isInteger(m[1]))
    .map(([start, end]) => [Math.max(0, start), Math.min(length, end)])
    .filter(([start, end]) => start < end)
    .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const merged = [];
  for (const [start, end] of pairs) {
    const last = merged[merged.length - 1];
    if (last && start <= last[1]) last[1] = Math.max(last[1], end);
    else merged.push([start, end]);
  }
  return merged;
}

/** `text` with its matches in <mark>, as a fragment; cut with "…" when long. */
export function highlighted(text, matches) {
  const points = Array.from(text);
  const ranges = cleanMatches(matches, points.length);
  let from = 0;
  let to = points.length;
  if (points.length > WINDOW) {
    from = Math.max(0, Math.min((ranges[0]?.[0] ?? 0) - LEAD, points.length - WINDOW));
    to = from + WINDOW;
  }
  const piece = (start, end) => points.slice(start, end).join('');
  const frag = document.createDocumentFragment();
  if (from > 0) frag.append('…');
  let at = from;
  for (const [start, end] of ranges) {
    const [markFrom, markTo] = [Math.max(start, from), Math.min(end, to)];
    if (markFrom >= markTo) continue;
    if (markFrom > at) frag.append(piece(at, markFrom));
    frag.append(h('mark', null, piece(markFrom, markTo)));
    at = markTo;
  }
  if (at < to) frag.append(piece(at, to));
  if (to < points.length) frag.append('…');
  return frag;
}
