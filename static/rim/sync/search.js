// Message search (POST /api/message/search): a page of the messages of all the user's
// conversations that contain the words asked for, best match first, each with where
// the words occur in it. The results are not kept in the store: only their senders.

import { api } from '../lib/api.js';
import { rememberUser } from '../lib/store.js';

export const SEARCH_PAGE_SIZE = 20;

const isResult = (row) =>
  row &&
  Number.isInteger(row.group?.id) &&
  Number.isInteger(row.msg?.id) &&
  typeof row.msg.content === 'string' &&
  Number.isInteger(row.msg.uid);

/** Page `page` (from 1) of the results for `q`: {results, more}. Rejects with an ApiError. */
export async function searchMessages(q, page) {
  const rows = await api('POST', '/api/message/search', { q, page, size: SEARCH_PAGE_SIZE });
  const list = Array.isArray(rows) ? rows : [];
  for (const row of list) rememberUser(row?.user);
  return { results: list.filter(isResult), more: list.length >= SEARCH_PAGE_SIZE };
}
