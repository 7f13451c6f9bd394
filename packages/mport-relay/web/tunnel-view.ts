/** How a tunnel reads on the pages: its state, its public address, its load-balancing group, and a copy button. */
import type { Tunnel } from './api.js'
import { h } from './dom.js'

/** up: its client is connected; reconnecting: the relay holds its address while the client is away. */
export function state (t: Tunnel): 'up' | 'reconnecting' {
  return t.online === false ? 'reconnecting' : 'up'
}

/** The address visitors use: the URL of an http/tls tunnel, else host:port on the relay. */
export function publicAddress (t: Tunnel): string {
  return t.url ?? `${location.hostname}:${t.port ?? 0}`
}

/** A button that copies `text` to the clipboard, saying so. */
export function copyButton (text: string, label = 'Copy'): HTMLButtonElement {
  const b = h('button', { type: 'button', class: 'copy', 'aria-label': `${label}: ${text}` }, label)
  b.addEventListener('click', () => {
    void navigator.clipboard?.writeText(text).then(() => { b.textContent = 'Copied'; setTimeout(() => { b.textContent = label }, 1500) }, () => { b.textContent = 'Select and copy' })
  })
  return b
}

/** One line for a group member tunnel: the group, its policy and how many members take visitors. */
export function groupSummary (t: Tunnel): string | undefined {
  const g = t.group
  if (g === undefined) return undefined
  const ready = g.members.filter(m => m.state === 'ready').length
  return `group ${g.name} (${g.policy === 'leastconn' ? 'least connections' : 'round robin'}): ${ready} of ${g.members.length} taking visitors`
}

/** The members of a tunnel's group as a table: address, software, state, open connections. */
export function groupMembers (t: Tunnel): HTMLTableElement | undefined {
  const g = t.group
  if (g === undefined) return undefined
  return h('table', { class: 'members', 'aria-label': `members of group ${g.name}` },
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Client'), h('th', { scope: 'col' }, 'Software'), h('th', { scope: 'col' }, 'State'), h('th', { scope: 'col' }, 'Open connections'))),
    h('tbody', {}, ...g.members.map(m => h('tr', { 'data-state': m.state },
      h('td', { class: 'client' }, m.remoteAddress ?? '—'),
      h('td', { class: 'agent' }, m.agent ?? '—'),
      h('td', { class: 'state' }, h('span', { class: `badge ${m.state}` }, m.state), m.healthDetail !== undefined ? h('div', { class: 'hint' }, m.healthDetail) : null),
      h('td', { class: 'connections num' }, m.connections)))))
}
