// The one gate for URLs from users or the server: only http(s) and same-origin paths
// ever become a src or href.

export function safeHttpUrl(raw) {
  if (typeof raw !== 'string') return null;
  const text = raw.trim();
  if (!text || text.length > 2048 || !/^(https?:\/\/|\/(?!\/))[^\s<>"'`\\]+$/i.test(text)) return null;
  try {
    const url = new URL(text, location.href);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}
