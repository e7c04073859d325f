// Time formatting. The server sends "YYYY-MM-DD HH:MM:SS" in its own time zone, shown
// here as local wall-clock time without conversion. The server's clock is known from
// the page (data-server-time), so that "now" and a message's age are the server's own
// whatever the browser's clock and time zone.

export function parseTime(text) {
  const m = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?/.exec(text || '');
  if (!m) return null;
  return new Date(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0), +(m[7] || '0').padEnd(3, '0'));
}

// server wall-clock minus this browser's, in ms; 0 if the page did not say
const serverOffsetMs = (() => {
  const served = parseTime(document.body.dataset.serverTime);
  return served ? served.getTime() - Date.now() : 0;
})();

/** The server's wall-clock time now, as parseTime reads the server's times. */
const serverNow = () => new Date(Date.now() + serverOffsetMs);

/** Seconds since a server time ("YYYY-MM-DD HH:MM:SS"); Infinity if unreadable. */
export function secondsSince(text) {
  const then = parseTime(text);
  return then ? (serverNow().getTime() - then.getTime()) / 1000 : Infinity;
}

/** A local message's time until the server's own arrives, in the server's format. */
export function nowText() {
  const d = serverNow();
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

function dayDiff(date) {
  const today = serverNow();
  const a = Date.UTC(today.getFullYear(), today.getMonth(), today.getDate());
  const b = Date.UTC(date.getFullYear(), date.getMonth(), date.getDate());
  return Math.round((a - b) / 86_400_000);
}

export const clock = (date) => date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });

/** Short time for the conversation list: the clock today, then a weekday, then a date. */
export function listTime(text) {
  const date = parseTime(text);
  if (!date) return '';
  const diff = dayDiff(date);
  if (diff === 0) return clock(date);
  if (diff === 1) return 'Yesterday';
  if (diff > 1 && diff < 7) return date.toLocaleDateString([], { weekday: 'short' });
  if (date.getFullYear() === serverNow().getFullYear()) {
    return date.toLocaleDateString([], { month: 'short', day: 'numeric' });
  }
  return date.toLocaleDateString();
}

/** The day separator inside a conversation. */
export function dayLabel(text) {
  const date = parseTime(text);
  if (!date) return '';
  const diff = dayDiff(date);
  if (diff === 0) return 'Today';
  if (diff === 1) return 'Yesterday';
  return date.toLocaleDateString([], { weekday: 'long', year: 'numeric', month: 'long', day: 'numeric' });
}

export const dayKey = (text) => (text || '').slice(0, 10);

/** When a user was last online, for a conversation's header. */
export function lastSeenText(text) {
  const date = parseTime(text);
  if (!date) return 'offline';
  const diff = dayDiff(date);
  if (diff === 0) return `last seen today at ${clock(date)}`;
  if (diff === 1) return `last seen yesterday at ${clock(date)}`;
  return `last seen ${date.toLocaleDateString([], { month: 'short', day: 'numeric' })} at ${clock(date)}`;
}
