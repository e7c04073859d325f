// Tabs: the sidebar's Chats / Contacts / Search, and arrow-key moves inside any role=tablist.

import { byId } from '../lib/dom.js';
import { setTab } from '../lib/store.js';
import { refreshContacts } from '../sync/contacts.js';

const SIDEBAR_TABS = ['chats', 'contacts', 'search'];

export function selectTab(tab) {
  setTab(tab);
  for (const name of SIDEBAR_TABS) {
    const on = name === tab;
    const button = byId(`tab-${name}`);
    button.setAttribute('aria-selected', String(on));
    button.tabIndex = on ? 0 : -1;
    byId(`panel-${name}`).hidden = !on;
  }
  if (tab === 'contacts') refreshContacts();
}

/** Arrow-key navigation inside a role=tablist (WAI-ARIA tabs pattern). */
export function tablistKeys(tablist, onSelect) {
  tablist.addEventListener('keydown', (event) => {
    const tabs = [...tablist.querySelectorAll('[role=tab]')];
    const index = tabs.indexOf(document.activeElement);
    if (index < 0) return;
    let next = null;
    if (event.key === 'ArrowRight') next = tabs[(index + 1) % tabs.length];
    else if (event.key === 'ArrowLeft') next = tabs[(index - 1 + tabs.length) % tabs.length];
    else if (event.key === 'Home') next = tabs[0];
    else if (event.key === 'End') next = tabs[tabs.length - 1];
    if (!next) return;
    event.preventDefault();
    onSelect(next);
    next.focus();
  });
}

export function initTabs() {
  for (const name of SIDEBAR_TABS) byId(`tab-${name}`).addEventListener('click', () => selectTab(name));
  tablistKeys(byId('tab-chats').parentElement, (tab) => selectTab(tab.id.replace('tab-', '')));
}
