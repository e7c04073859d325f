// The sidebar's Search tab: the messages of all the user's conversations that contain
// the words typed (asked once typing pauses, or at once with Enter), each with its
// conversation and sender named and the matched words marked; "More results" brings
// the next page. Choosing a result opens its conversation at that message.

import { isServerRefusal } from '../lib/api.js';
import { byId, h } from '../lib/dom.js';
import { highlighted } from '../lib/highlight.js';
import { convName, isMine, state, userName } from '../lib/store.js';
import { listTime } from '../lib/time.js';
import { searchMessages } from '../sync/search.js';

const TYPING_PAUSE_MS = 300;
const HINT = 'Find words in the messages of all your conversations.';

const search = {
  q: '', // the words of the results shown
  page: 0, // how many pages of them are shown
  asked: 0, // serial of the latest request: an older answer is dropped
  timer: 0,
  onChoose: () => {},
};

const setStatus = (text) => {
  byId('msg-search-status').textContent = text;
};

function whereText(group) {
  const conv = state.convs.get(group.id);
  return conv ? convName(conv) : group.name || 'Conversation';
}

function senderText(row) {
  if (isMine(row.msg)) return 'You';
  return row.user?.name || row.user?.account || userName(row.msg.uid);
}

function resultEl(row) {
  const { group, msg } = row;
  return h(
    'li',
    null,
    h(
      'button',
      {
        type: 'button',
        class: 'search-hit',
        'data-testid': 'msg-search-result',
        'data-gid': group.id,
        'data-msg-id': msg.id,
        onclick: () => search.onChoose(group.id, msg.id),
      },
      h(
        'span',
        { class: 'hit-top' },
        h('span', { class: 'hit-conv', 'data-testid': 'result-conv' }, whereText(group)),
        h('time', { class: 'hit-time', datetime: msg.createTime }, listTime(msg.createTime)),
      ),
      h(
        'span',
        { class: 'hit-body' },
        h('span', { class: 'hit-sender', 'data-testid': 'result-sender' }, senderText(row)),
        ': ',
        h('span', { class: 'hit-text', 'data-testid': 'result-text' }, highlighted(msg.content, row.matches)),
      ),
    ),
  );
}

function countText(count, more) {
  if (!count) return `No messages match “${search.q}”.`;
  const found = `${count}${more ? '+' : ''} message${count === 1 ? '' : 's'} found`;
  return more ? `${found}; more below.` : `${found}.`;
}

/** Shows page `page` of the results for `q` (page 1 replaces what is shown). */
async function showResults(q, page) {
  const asked = ++search.asked;
  const list = byId('msg-search-results');
  const more = byId('msg-search-more');
  if (!q) {
    Object.assign(search, { q: '', page: 0 });
    list.replaceChildren();
    more.hidden = true;
    setStatus(HINT);
    return;
  }
  list.setAttribute('aria-busy', 'true');
  more.disabled = true;
  setStatus('Searching…');
  let answer;
  try {
    answer = await searchMessages(q, page);
  } catch (err) {
    if (asked === search.asked) {
      setStatus(isServerRefusal(err) ? `Search failed: ${err.message}` : err.message);
      list.removeAttribute('aria-busy');
      more.disabled = false;
    }
    return;
  }
  if (asked !== search.asked) return;
  Object.assign(search, { q, page });
  const items = answer.results.map(resultEl);
  if (page === 1) list.replaceChildren(...items);
  else list.append(...items);
  list.removeAttribute('aria-busy');
  more.hidden = !answer.more;
  more.disabled = false;
  setStatus(countText(list.childElementCount, answer.more));
  if (page > 1) items[0]?.querySelector('button').focus(); // "More results" may have gone
}

function searchSoon(q) {
  clearTimeout(search.timer);
  search.timer = setTimeout(() => showResults(q, 1), TYPING_PAUSE_MS);
}

/** Signing out: nothing of the results stays on the page. */
export function clearMessageSearch() {
  clearTimeout(search.timer);
  byId('msg-search-input').value = '';
  showResults('', 1);
}

/** onChoose(gid, msgId): what choosing a result does (the pane shows that message). */
export function initSearch(onChoose) {
  search.onChoose = onChoose;
  const input = byId('msg-search-input');
  setStatus(HINT);
  input.addEventListener('input', () => searchSoon(input.value.trim()));
  byId('msg-search-form').addEventListener('submit', (event) => {
    event.preventDefault();
    clearTimeout(search.timer);
    showResults(input.value.trim(), 1);
  });
  byId('msg-search-more').addEventListener('click', () => showResults(search.q, search.page + 1));
}
