// DOM building and page-wide feedback (toasts, screen-reader announcements).
//
// Security rule for every module of the client: user content reaches the DOM only as
// text nodes (textContent / Node.append(string)) or as validated attribute values.
// Nothing assigns innerHTML/outerHTML or inserts HTML strings; `h` is the one builder.

export const NARROW_QUERY = '(max-width: 760px)';

export const byId = (id) => document.getElementById(id);

export const isNarrow = () => matchMedia(NARROW_QUERY).matches;

/** Builds an element. Props become attributes (event handlers only as functions). */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) {
    for (const [key, value] of Object.entries(props)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === 'class') {
        el.className = value;
      } else if (key.startsWith('on')) {
        if (typeof value !== 'function') throw new TypeError(`handler ${key} must be a function`);
        el.addEventListener(key.slice(2), value);
      } else {
        el.setAttribute(key, value === true ? '' : String(value));
      }
    }
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export function announce(text) {
  const region = byId('announcer');
  region.textContent = '';
  // cleared first and refilled a frame later, so the same text is announced again
  requestAnimationFrame(() => {
    region.textContent = text;
  });
}

export function toast(text, kind = 'info') {
  const box = h(
    'div',
    { class: `toast ${kind}`, role: kind === 'error' ? 'alert' : null, 'data-testid': 'toast' },
    text,
  );
  const region = byId('toasts');
  region.append(box);
  raiseToasts(region);
  setTimeout(() => {
    box.remove();
    if (!region.childElementCount && region.matches(':popover-open')) region.hidePopover();
  }, kind === 'error' ? 7000 : 4000);
}

/** Toasts live in the top layer (a popover), re-raised so they show above open dialogs. */
function raiseToasts(region) {
  if (typeof region.showPopover !== 'function') return;
  if (region.matches(':popover-open')) region.hidePopover();
  region.showPopover();
}

/** A dialog's form error line, where failures of that dialog are shown. */
export const formError = (el) => el.querySelector('.form-error');
