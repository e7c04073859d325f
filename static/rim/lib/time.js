// Time formatting. The server sends "YYYY-MM-DD HH:MM:SS" in its own time zone, shown
// here as local wall-clock time without conversion.

export function parseTime(text) {
  const m = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2}))?/.exec(text || '');
  if (!m) return null;
  return new Date(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0));
}

/** A local message's time until the server's own arrives, in the server's format. */
export function nowText() {
  const d = new Date();
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

function dayDiff(date) {
  const today = new Date();
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
  if (date.getFullYear() === new Date().getFullYear()) {
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
