// Avatars: the picture when its URL is safe and loads, else initials on a hue taken
// from the name (so one person keeps one colour everywhere).

import { h } from './dom.js';
import { safeHttpUrl } from './url.js';

function initials(name) {
  const words = String(name || '?').trim().split(/\s+/).filter(Boolean);
  const letters = words.slice(0, 2).map((w) => Array.from(w)[0]);
  return (letters.join('') || '?').toUpperCase();
}

function hue(text) {
  let n = 0;
  for (const ch of String(text || '')) n = (n * 31 + ch.codePointAt(0)) % 360;
  return n;
}

export function avatarEl(name, url, size = '') {
  const el = h('span', { class: `avatar ${size}`.trim(), 'aria-hidden': 'true' }, initials(name));
  el.style.setProperty('--avatar-hue', String(hue(name)));
  const src = safeHttpUrl(url);
  if (src) {
    const img = h('img', { src, alt: '', loading: 'lazy', decoding: 'async', referrerpolicy: 'no-referrer' });
    img.addEventListener('error', () => img.remove());
    el.append(img);
  }
  return el;
}
