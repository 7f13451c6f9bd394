/** My tunnels, live from the push channel: a row appears when a client connects and goes when it leaves. */
import { bytes, fill, h, rate, ago } from '../dom.js'
import { onSnapshot } from '../live.js'
import { Rates } from '../rates.js'
import { copyButton, groupSummary, publicAddress, state } from '../tunnel-view.js'
import type { Page } from '../main.js'

export const tunnelsPage: Page = (main, ctx) => {
  const body = h('tbody')
  const empty = h('p', { class: 'empty', id: 'no-tunnels' }, 'No tunnel is up. ', h('a', { href: '#/connect' }, 'Connect a machine'), ' to start one.')
  const updated = h('p', { class: 'hint', id: 'updated' })
  fill(main,
    h('h1', {}, 'My tunnels'),
    h('div', { class: 'scroll' }, h('table', { id: 'tunnels' },
      h('caption', { class: 'visually-hidden' }, 'Live tunnels'),
      h('thead', {}, h('tr', {}, ...['Name', 'State', 'Public address', 'Kind', 'Connections', 'In', 'Out', 'Rate', 'Client', 'Up since'].map(c => h('th', { scope: 'col' }, c)))),
      body)),
    empty, updated)
  const rates = new Rates()
  return onSnapshot(s => {
    rates.update(s)
    const mine = s.tunnels.filter(t => t.userId === ctx.session.user.id)
    empty.hidden = mine.length > 0
    fill(body, ...mine.map(t => h('tr', { 'data-id': t.id, 'data-state': state(t) },
      h('td', { class: 'name' }, h('a', { href: `#/tunnels/${encodeURIComponent(t.id)}` }, t.name)),
      h('td', { class: 'state' }, h('span', { class: `badge ${state(t)}` }, state(t)), state(t) === 'reconnecting' && t.lastSeen !== undefined ? h('div', { class: 'hint last-seen' }, `last seen ${ago(t.lastSeen, s.at)}`) : null),
      h('td', { class: 'address' }, h('code', {}, publicAddress(t)), ' ', copyButton(publicAddress(t))),
      h('td', { class: 'kind' }, t.kind ?? 'tcp', t.group !== undefined ? h('div', { class: 'hint group' }, groupSummary(t)) : null),
      h('td', { class: 'connections num' }, t.connections ?? 0),
      h('td', { class: 'bytes-in num', 'data-bytes': t.bytesIn ?? 0 }, bytes(t.bytesIn ?? 0)),
      h('td', { class: 'bytes-out num', 'data-bytes': t.bytesOut ?? 0 }, bytes(t.bytesOut ?? 0)),
      h('td', { class: 'rate num' }, rate(rates.of(t.id))),
      h('td', { class: 'client' }, t.clientAddress ?? '—', t.clientAgent !== undefined ? h('div', { class: 'agent hint' }, t.clientAgent) : null),
      h('td', { class: 'since' }, t.since !== undefined ? ago(t.since, s.at) : '—'))))
    updated.textContent = `Updated ${new Date(s.at).toLocaleTimeString()}`
  })
}
