// Friends, friend requests and finding people, on the server.

import { api, isServerRefusal, q } from '../lib/api.js';
import { toast } from '../lib/dom.js';
import { rememberUser, requestSent, setContacts, state } from '../lib/store.js';

export async function refreshContacts() {
  if (!state.me) return;
  try {
    const [friends, requests] = await Promise.all([
      api('GET', '/api/friend/list?status=1'),
      api('GET', '/api/friend/list?status=0'),
    ]);
    setContacts(friends || [], requests || []);
  } catch (err) {
    if (isServerRefusal(err) && state.me) toast(err.message, 'error');
  }
}

export const ACCEPT = 1;
export const REJECT = 2;

/** Accepts or rejects a request (ACCEPT / REJECT); throws ApiError. */
export const answerRequest = (user, status) => api('POST', '/api/friend/status/modify', { fid: user.id, status });

export async function addFriend(user) {
  await api('POST', '/api/friend/add', { fid: user.id });
  requestSent(user.id);
}

/** The user with this account; throws ApiError (404: nobody). */
export async function findByAccount(account) {
  const user = await api('GET', `/api/user/search?account=${q(account)}`);
  rememberUser(user);
  return user;
}
