// The session: the sign-in / create-account screen, entering the messenger with a
// token (kept in localStorage so a reload stays signed in), and leaving it on logout,
// on an expired token or when another tab signs out.

import { api, ApiError, q } from '../lib/api.js';
import { avatarEl } from '../lib/avatar.js';
import { byId, formError } from '../lib/dom.js';
import { isLoggedIn, sayGoodbye, start as connect, stop as disconnect } from '../lib/socket.js';
import { displayName, setMe, setToken, signedOut, state } from '../lib/store.js';
import { safeHttpUrl } from '../lib/url.js';
import { refreshContacts } from '../sync/contacts.js';
import { refreshConversations } from '../sync/conversations.js';
import { dropReceipts } from '../sync/receipts.js';
import { cancelAllUploads } from '../sync/uploads.js';
import { showBanner } from './banner.js';
import { clearComposer } from './composer.js';
import { clearSearch } from './contacts.js';
import { closeConversation } from './pane.js';
import { clearMessageSearch } from './search.js';
import { selectTab, tablistKeys } from './tabs.js';

const STORE_TOKEN = 'rim.token';
const STORE_USER = 'rim.user';
const POLL_MS = 30_000;

export const EXPIRED = 'Your session has expired. Please sign in again.';

const session = { pollTimer: 0 };

function saveSession() {
  try {
    localStorage.setItem(STORE_TOKEN, state.token);
    localStorage.setItem(STORE_USER, JSON.stringify(state.me));
  } catch {
    // private mode: the session lasts until the tab closes
  }
}

function renderMe() {
  const me = state.me;
  byId('me-avatar').replaceChildren(avatarEl(displayName(me), me.avatar));
  byId('me-name').textContent = displayName(me);
  byId('me-account').textContent = `@${me.account}`;
}

/** Refreshes what the socket does not push (new friends, groups, requests) while the tab is seen. */
function poll() {
  if (document.visibilityState !== 'visible' || !state.me) return;
  refreshConversations();
  refreshContacts();
}

function enterApp(token, user) {
  setToken(token);
  setMe(user);
  saveSession();
  byId('auth-screen').hidden = true;
  byId('app').hidden = false;
  showBanner(true);
  renderMe();
  selectTab('chats');
  closeConversation();
  connect();
  refreshConversations();
  refreshContacts();
  clearInterval(session.pollTimer);
  session.pollTimer = setInterval(poll, POLL_MS);
}

export function leaveApp(message) {
  if (!state.me && !state.token) return;
  disconnect();
  clearInterval(session.pollTimer);
  for (const dialog of document.querySelectorAll('dialog[open]')) dialog.close();
  try {
    localStorage.removeItem(STORE_TOKEN);
    localStorage.removeItem(STORE_USER);
  } catch {
    // nothing stored
  }
  dropReceipts();
  cancelAllUploads();
  signedOut();
  closeConversation();
  clearSearch();
  clearMessageSearch();
  clearComposer();
  showAuth(message);
}

function showAuth(message) {
  byId('app').hidden = true;
  showBanner(false);
  byId('auth-screen').hidden = false;
  selectAuthTab('login');
  byId('login-form').reset();
  formError(byId('login-form')).textContent = message || '';
  byId('login-account').focus();
}

function selectAuthTab(which) {
  const login = which === 'login';
  byId('tab-login').setAttribute('aria-selected', String(login));
  byId('tab-register').setAttribute('aria-selected', String(!login));
  byId('tab-login').tabIndex = login ? 0 : -1;
  byId('tab-register').tabIndex = login ? -1 : 0;
  byId('login-form').hidden = !login;
  byId('register-form').hidden = login;
}

async function signIn(account, password) {
  const token = await api('POST', '/api/user/login', { account, password });
  if (typeof token !== 'string' || !token) throw new ApiError(500, 'The server sent no token.');
  setToken(token); // the next request needs it
  let user;
  try {
    user = await api('GET', `/api/user/token?token=${q(token)}`);
  } catch (err) {
    setToken(null);
    throw err;
  }
  enterApp(token, user);
}

/** Runs a form's submission with its button disabled; a thrown error is shown by explain(err). */
async function submitting(form, work, explain) {
  const submit = form.querySelector('[type=submit]');
  submit.disabled = true;
  try {
    await work();
  } catch (err) {
    formError(form).textContent = explain(err);
  } finally {
    submit.disabled = false;
  }
}

async function submitLogin(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const error = formError(form);
  const account = byId('login-account').value.trim();
  const password = byId('login-password').value;
  error.textContent = '';
  if (!account || !password) {
    error.textContent = 'Enter your account and password.';
    (account ? byId('login-password') : byId('login-account')).focus();
    return;
  }
  await submitting(
    form,
    () => signIn(account, password),
    (err) => (err.status === 401 ? 'Wrong account or password.' : err.message),
  );
}

async function submitRegister(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const error = formError(form);
  const name = byId('register-name').value.trim();
  const account = byId('register-account').value.trim();
  const password = byId('register-password').value;
  const email = byId('register-email').value.trim();
  const avatar = byId('register-avatar').value.trim();
  error.textContent = '';
  const missing = [
    [name, 'register-name', 'a display name'],
    [account, 'register-account', 'an account'],
    [password, 'register-password', 'a password'],
  ].find(([value]) => !value);
  if (missing) {
    error.textContent = `Please enter ${missing[2]}.`;
    byId(missing[1]).focus();
    return;
  }
  if (avatar && !safeHttpUrl(avatar)) {
    error.textContent = 'The avatar must be an http:// or https:// address.';
    byId('register-avatar').focus();
    return;
  }
  await submitting(
    form,
    async () => {
      await api('POST', '/api/user/create', { name, avatar, email, account, password });
      await signIn(account, password);
    },
    (err) => (err.status === 409 ? `The account “${account}” is taken.` : err.message),
  );
}

async function logout() {
  byId('logout-btn').disabled = true;
  if (isLoggedIn()) {
    const bye = sayGoodbye();
    dropReceipts();
    await bye;
  }
  await api('POST', '/api/user/logout').catch(() => {});
  byId('logout-btn').disabled = false;
  leaveApp();
}

/** At page load: back into the stored session, or the sign-in screen. */
export function restoreSession() {
  let token = null;
  let user = null;
  try {
    token = localStorage.getItem(STORE_TOKEN);
    user = JSON.parse(localStorage.getItem(STORE_USER) || 'null');
  } catch {
    token = null;
  }
  if (!token || !user || !Number.isInteger(user.id)) {
    showAuth();
    return;
  }
  enterApp(token, user);
  api('GET', `/api/user/token?token=${q(token)}`)
    .then((fresh) => {
      if (!state.me || fresh.id !== state.me.id) return;
      setMe(fresh);
      saveSession();
      renderMe();
    })
    .catch(() => {}); // a 401 already signed us out; offline: keep going
}

export function initSession() {
  byId('login-form').addEventListener('submit', submitLogin);
  byId('register-form').addEventListener('submit', submitRegister);
  byId('tab-login').addEventListener('click', () => selectAuthTab('login'));
  byId('tab-register').addEventListener('click', () => selectAuthTab('register'));
  tablistKeys(byId('tab-login').parentElement, (tab) => selectAuthTab(tab.id === 'tab-login' ? 'login' : 'register'));
  byId('logout-btn').addEventListener('click', logout);
  window.addEventListener('storage', (e) => {
    if (e.key === STORE_TOKEN && !e.newValue && state.token) leaveApp('You signed out in another tab.');
  });
}
