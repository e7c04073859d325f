// rim web client, entry module: plain ES modules, no dependencies, no build step.
//
// It speaks the wire contract of docs/protocol.md: the REST API under /api/ (every
// answer is the {ok, code, msg, data} envelope) and the WebSocket at /ws (client events
// Login/Msg/Read/Heart/Logout/Ack and v2's Recall/Edit/React/Typing, one MsgAck per
// event; Msg/Read pushes and v2's Recall/Edit/React/Typing/Presence pushes).
//
// Layout: lib/ has what knows nothing of the screen's parts (DOM helpers, content
// rendering, the REST and WebSocket clients, the store); sync/ moves data between the
// server and the store; views/ draws the store and turns user actions into calls to
// sync/. This module connects the three and starts the session.

import { configureApi } from './lib/api.js';
import { NARROW_QUERY } from './lib/dom.js';
import { configureSocket, isConnected, retryNow } from './lib/socket.js';
import { state } from './lib/store.js';
import { refreshContacts } from './sync/contacts.js';
import { refreshConversations } from './sync/conversations.js';
import { resendPending } from './sync/outbox.js';
import { listenToPushes } from './sync/pushes.js';
import { flushAcks, readOpenConversation } from './sync/receipts.js';
import { initAttach } from './views/attach.js';
import { initBanner } from './views/banner.js';
import { initComposer } from './views/composer.js';
import { initContacts } from './views/contacts.js';
import { focusOpenItem, initConvList } from './views/conv-list.js';
import { initGroups } from './views/groups.js';
import { initLightbox } from './views/lightbox.js';
import { initMessageMenu } from './views/message-menu.js';
import { initPane, openConversation, showMessage } from './views/pane.js';
import { initPresence } from './views/presence.js';
import { initReply } from './views/reply.js';
import { initSearch } from './views/search.js';
import { EXPIRED, initSession, leaveApp, restoreSession } from './views/session.js';
import { initTabs } from './views/tabs.js';
import { initTyping } from './views/typing.js';

function onLoggedIn(reconnected) {
  resendPending();
  flushAcks();
  refreshConversations({ reloadOpen: reconnected });
  refreshContacts();
}

function wire() {
  configureApi({ token: () => state.token, expired: () => leaveApp(EXPIRED) });
  configureSocket({ loggedIn: onLoggedIn, authFailed: () => leaveApp(EXPIRED) });
  listenToPushes();

  initBanner();
  initSession();
  initTabs();
  initConvList((gid) => openConversation(gid));
  initPane(focusOpenItem);
  initComposer();
  initAttach();
  initLightbox();
  initReply();
  initMessageMenu();
  initPresence();
  initTyping();
  initContacts();
  initGroups();
  initSearch(showMessage);
  for (const button of document.querySelectorAll('dialog [data-close]')) {
    button.addEventListener('click', () => button.closest('dialog').close());
  }

  // a conversation counts as read only once it is really in view
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState !== 'visible') return;
    readOpenConversation();
    if (state.me && !isConnected()) retryNow();
  });
  window.addEventListener('focus', readOpenConversation);
  window.addEventListener('online', retryNow);
  matchMedia(NARROW_QUERY).addEventListener('change', readOpenConversation);
}

wire();
restoreSession();
