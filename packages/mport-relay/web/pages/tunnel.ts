/**
 * One tunnel: its live numbers, a live chart of bytes per second (from the push channel's
 * counters, the last ten minutes this tab saw), and its history from the usage buckets
 * (24 h by hour, 30 days by day), and its recent visitors (asked again when its counters move,
 * at most every 2 s).
 */
import { call, get, type RecentRequest, type RecentVisitor, type Tunnel, type Usage } from '../api.js'
import { timeChart } from '../chart.js'
import { bytes, field, fill, h, notice, rate, when } from '../dom.js'
import { onSnapshot } from '../live.js'
import { Rates } from '../rates.js'
import { copyButton, groupMembers, groupSummary, publicAddress, state } from '../tunnel-view.js'
import type { Page } from '../main.js'

const LIVE_POINTS = 600

export const tunnelPage: Page = (main, ctx) => {
  const id = ctx.params[0]!
  const facts = h('dl', { id: 'facts', class: 'facts' })
  const liveBox = h('div', { id: 'live-chart', class: 'chart' })
  const historyBox = h('div', { id: 'history-chart', class: 'chart' })
  const totals = h('p', { id: 'history-totals', class: 'hint' })
  const status = h('div')
  const visitorRows = h('tbody')
  const requestRows = h('tbody')
  const range = h('select', { id: 'range', 'aria-label': 'History range' },
    h('option', { value: 'hour' }, 'Last 24 hours, by hour'), h('option', { value: 'day' }, 'Last 30 days, by day'))
  const title = h('h1', {}, 'Tunnel')
  const closeBtn = h('button', { type: 'button', class: 'danger', id: 'close-tunnel' }, 'Close tunnel')
  const hours = h('input', { name: 'hours', type: 'number', min: 1, max: 168, value: 8, required: true })
  const filterText = h('p', { class: 'filter' })
  const grantList = h('ul', { id: 'grants' })
  const openHint = h('p', { class: 'hint' }, 'The client gave no allow list, so every address may connect (allow_ip on the client restricts it).')
  const allowForm = h('form', { class: 'card', id: 'allow-ip' }, field('Hours', hours), h('button', { type: 'submit' }, 'Allow my current IP'))
  allowForm.addEventListener('submit', e => {
    e.preventDefault()
    call<{ grants: Array<{ address: string }> }>('POST', `/v1/tunnels/${encodeURIComponent(id)}/allow`, { hours: Number(hours.value) })
      .then(r => fill(status, notice(`Allowed ${r.grants.at(-1)?.address ?? ''} for ${hours.value} h.`, 'ok')), (err: unknown) => fill(status, notice((err as Error).message)))
  })
  const access = h('section', { id: 'access' }, h('h2', {}, 'Who may connect'), filterText, allowForm, grantList, openHint)
  // http tunnels only: metadata the relay read from each exchange (never headers or bodies).
  const requestsSection = h('section', { id: 'recent-requests', hidden: true }, h('h2', {}, 'Recent requests'), h('div', { class: 'scroll' }, h('table', { id: 'requests' },
    h('thead', {}, h('tr', {}, ...['When', 'Method', 'Path', 'Status', 'Duration', 'Request', 'Response', 'Address'].map(c => h('th', { scope: 'col' }, c)))), requestRows)))
  fill(main, title, facts, closeBtn, status, access,
    h('section', {}, h('h2', {}, 'Live traffic'), liveBox),
    h('section', {}, h('h2', {}, 'History'), range, historyBox, totals),
    h('section', {}, h('h2', {}, 'Recent visitors'), h('div', { class: 'scroll' }, h('table', { id: 'visitors' },
      h('thead', {}, h('tr', {}, ...['When', 'Address', 'In', 'Out', 'Refused'].map(c => h('th', { scope: 'col' }, c)))), visitorRows))),
    requestsSection)
  const liveChart = timeChart(liveBox, 'Bytes per second (this tab)', [{ label: 'in', stroke: '#1f6feb' }, { label: 'out', stroke: '#d4380d' }], v => rate(v))
  const historyChart = timeChart(historyBox, 'Bytes per bucket', [{ label: 'in', stroke: '#1f6feb' }, { label: 'out', stroke: '#d4380d' }])
  const points: number[][] = [[], [], []]
  const prev = { at: 0, in: 0, out: 0 }
  const rates = new Rates()
  let tunnel: Tunnel | undefined

  const loadHistory = async (): Promise<void> => {
    if (tunnel === undefined) return
    const q = new URLSearchParams({ granularity: range.value, tunnel: tunnel.name })
    if (tunnel.userId !== ctx.session.user.id) q.set('user', tunnel.userId)
    try {
      const u = await get<Usage>(`/v1/usage?${q.toString()}`)
      historyChart.update([u.buckets.map(b => b.start / 1000), u.buckets.map(b => b.bytesIn), u.buckets.map(b => b.bytesOut)], [u.from / 1000, u.to / 1000])
      totals.textContent = `In ${bytes(u.totals.bytesIn)}, out ${bytes(u.totals.bytesOut)}, ${u.totals.connections} connections in this range.`
    } catch (err) {
      fill(status, notice((err as Error).message))
    }
  }
  range.addEventListener('change', () => { void loadHistory() })
  let visitorsAsked = 0
  let visitorsKey = ''
  const loadVisitors = async (key: string): Promise<void> => {
    if (key === visitorsKey || Date.now() - visitorsAsked < 2000) return
    visitorsKey = key
    visitorsAsked = Date.now()
    const list = await get<RecentVisitor[]>(`/v1/tunnels/${encodeURIComponent(id)}/visitors`)
    fill(visitorRows, ...list.map(v => h('tr', { class: v.refused !== undefined ? 'refused' : '' },
      h('td', {}, when(v.at)), h('td', { class: 'address' }, v.address), h('td', { class: 'num' }, bytes(v.bytesIn)), h('td', { class: 'num' }, bytes(v.bytesOut)), h('td', { class: 'reason' }, v.refused ?? ''))))
    if (tunnel?.kind !== 'http') return
    const requests = await get<RecentRequest[]>(`/v1/tunnels/${encodeURIComponent(id)}/requests`)
    requestsSection.hidden = false
    fill(requestRows, ...requests.map(r => h('tr', { class: r.status >= 500 ? 'refused' : '' },
      h('td', {}, when(r.at)), h('td', { class: 'method' }, r.method), h('td', { class: 'path' }, h('code', {}, r.path)), h('td', { class: 'status num' }, r.status),
      h('td', { class: 'num' }, `${r.durationMs} ms`), h('td', { class: 'num' }, bytes(r.requestBytes)), h('td', { class: 'num' }, bytes(r.responseBytes)), h('td', { class: 'address' }, r.address))))
  }
  closeBtn.addEventListener('click', () => {
    call('DELETE', `/v1/tunnels/${encodeURIComponent(id)}`).then(() => fill(status, notice('Tunnel closed.', 'ok')), (err: unknown) => fill(status, notice((err as Error).message)))
  })
  const historyTimer = setInterval(() => { void loadHistory() }, 15_000)

  const stop = onSnapshot(s => {
    rates.update(s)
    const t = s.tunnels.find(x => x.id === id)
    if (t === undefined) {
      main.dataset.gone = 'true'
      fill(facts, h('dt', {}, 'State'), h('dd', { class: 'state' }, 'gone: the tunnel closed'))
      closeBtn.hidden = true
      return
    }
    const first = tunnel === undefined
    tunnel = t
    title.textContent = `Tunnel ${t.name}`
    const bi = t.bytesIn ?? 0
    const bo = t.bytesOut ?? 0
    if (prev.at > 0 && s.at > prev.at) {
      const dt = (s.at - prev.at) / 1000
      points[0]!.push(s.at / 1000); points[1]!.push(Math.max(0, (bi - prev.in) / dt)); points[2]!.push(Math.max(0, (bo - prev.out) / dt))
      if (points[0]!.length > LIVE_POINTS) for (const p of points) p.shift()
      liveChart.update(points)
    }
    Object.assign(prev, { at: s.at, in: bi, out: bo })
    const row = (k: string, v: Node | string, cls: string): Node[] => [h('dt', {}, k), h('dd', { class: cls }, v)]
    fill(facts,
      ...row('State', h('span', { class: `badge ${state(t)}` }, state(t)), 'state'),
      ...row('Public address', h('span', {}, h('code', {}, publicAddress(t)), ' ', copyButton(publicAddress(t))), 'address'),
      ...row('Kind', t.kind ?? 'tcp', 'kind'),
      ...row('Owner', t.userName ?? t.userId, 'owner'),
      ...row('Open connections', String(t.connections ?? 0), 'connections'),
      ...row('Bytes in', bytes(bi), 'bytes-in'),
      ...row('Bytes out', bytes(bo), 'bytes-out'),
      ...row('Rate', rate(rates.of(t.id)), 'rate'),
      ...row('Client address', t.clientAddress ?? '—', 'client'),
      ...row('Client software', t.clientAgent ?? '—', 'agent'),
      ...row('Up since', when(t.since), 'since'),
      ...row('Client last seen', t.online === false ? when(t.lastSeen) : 'connected now', 'last-seen'),
      ...(t.group !== undefined ? row('Load balancing', h('span', {}, groupSummary(t) ?? '', groupMembers(t)), 'group') : []))
    const grants = t.grants ?? []
    filterText.textContent = t.filter ?? 'open to every address'
    allowForm.hidden = t.restricted !== true
    openHint.hidden = t.restricted === true
    fill(grantList, ...grants.map(g => h('li', {}, h('code', {}, g.address), ` may connect until ${when(g.until)}`)))
    if (first) void loadHistory()
    loadVisitors(`${bi}:${bo}:${t.connections ?? 0}`).catch(() => undefined)
  })
  return () => { stop(); clearInterval(historyTimer); liveChart.destroy(); historyChart.destroy() }
}
