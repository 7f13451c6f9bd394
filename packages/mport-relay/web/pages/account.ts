/** Account: usage this month against the plan's quota, the plan's limits, reservations, and changing the password. */
import { call, get, type Limits, type Reservation } from '../api.js'
import { bytes, field, fill, h, notice, when } from '../dom.js'
import type { Page } from '../main.js'

interface Me { user: { name: string }, limits: Limits, monthBytes: number }

const LIMIT_LABELS: Record<keyof Limits, string> = {
  maxTunnels: 'Tunnels at once', maxConnections: 'Visitor connections at once', monthlyBytes: 'Transfer per month',
  bandwidthBytesPerSecond: 'Bandwidth', connectionsPerMinute: 'New connections per minute',
}

function limitText (k: keyof Limits, v: number | null): string {
  if (v === null) return 'unlimited'
  if (k === 'monthlyBytes') return bytes(v)
  if (k === 'bandwidthBytesPerSecond') return `${bytes(v)}/s`
  return String(v)
}

export const accountPage: Page = main => {
  const usage = h('section', { id: 'usage' })
  const reservations = h('tbody')
  const resStatus = h('div')
  const pwStatus = h('div', { id: 'password-status' })
  const kind = h('select', { name: 'kind' }, h('option', { value: 'subdomain' }, 'subdomain'), h('option', { value: 'port' }, 'port'))
  const value = h('input', { name: 'value', required: true, maxlength: 63 })
  const current = h('input', { name: 'current', type: 'password', autocomplete: 'current-password', required: true })
  const next = h('input', { name: 'password', type: 'password', autocomplete: 'new-password', required: true })

  const loadUsage = async (): Promise<void> => {
    const me = await get<Me>('/v1/me')
    const quota = me.limits.monthlyBytes
    const pct = quota === null || quota === 0 ? 0 : Math.min(100, me.monthBytes * 100 / quota)
    fill(usage, h('h2', {}, 'This month'),
      h('p', {}, `${bytes(me.monthBytes)} used of ${quota === null ? 'an unlimited quota' : bytes(quota)}`),
      quota === null ? null : h('progress', { id: 'quota', max: 100, value: pct.toFixed(1), 'aria-label': `${pct.toFixed(1)}% of the monthly quota` }),
      h('dl', { class: 'facts' }, ...Object.entries(me.limits).flatMap(([k, v]) => [h('dt', {}, LIMIT_LABELS[k as keyof Limits]), h('dd', {}, limitText(k as keyof Limits, v))])))
  }
  const loadReservations = async (): Promise<void> => {
    const list = await get<Reservation[]>('/v1/reservations')
    fill(reservations, ...list.map(r => h('tr', {}, h('td', {}, r.kind), h('td', {}, h('code', {}, r.value)), h('td', {}, when(r.createdAt)),
      h('td', {}, h('button', { type: 'button', class: 'danger', onclick: () => { release(r) } }, `Release ${r.value}`)))))
  }
  const release = (r: Reservation): void => {
    call('DELETE', `/v1/reservations/${encodeURIComponent(r.id)}`).then(loadReservations).catch((err: unknown) => fill(resStatus, notice((err as Error).message)))
  }
  const reserve = (): void => {
    fill(resStatus)
    call('POST', '/v1/reservations', { kind: kind.value, value: kind.value === 'port' ? Number(value.value) : value.value })
      .then(loadReservations).catch((err: unknown) => fill(resStatus, notice((err as Error).message)))
  }
  const changePassword = (): void => {
    call('PUT', '/v1/me/password', { current: current.value, password: next.value })
      .then(() => { fill(pwStatus, notice('Password changed.', 'ok')); current.value = next.value = '' }, (err: unknown) => fill(pwStatus, notice((err as Error).message)))
  }
  fill(main, h('h1', {}, 'Account'), usage,
    h('section', {}, h('h2', {}, 'Reservations'),
      h('form', { class: 'card', id: 'reserve', onsubmit: (e: Event) => { e.preventDefault(); reserve() } }, field('Kind', kind), field('Subdomain or port', value), h('button', { type: 'submit' }, 'Reserve')),
      resStatus,
      h('div', { class: 'scroll' }, h('table', { id: 'reservations' }, h('thead', {}, h('tr', {}, ...['Kind', 'Value', 'Reserved', ''].map(c => h('th', { scope: 'col' }, c)))), reservations))),
    h('section', {}, h('h2', {}, 'Change password'),
      h('form', { class: 'card narrow', id: 'password', onsubmit: (e: Event) => { e.preventDefault(); changePassword() } },
        field('Current password', current), field('New password', next), h('button', { type: 'submit' }, 'Change password')), pwStatus))
  loadUsage().catch((err: unknown) => fill(usage, notice((err as Error).message)))
  loadReservations().catch((err: unknown) => fill(resStatus, notice((err as Error).message)))
}
