/** Admin: users (create, disable, plan overrides), every tunnel (live), relay health and the audit log. */
import { call, get, type AuditEntry, type Limits, type User } from '../api.js'
import { bytes, field, fill, h, notice, when } from '../dom.js'
import { onSnapshot } from '../live.js'
import { publicAddress, state } from '../tunnel-view.js'
import type { Page } from '../main.js'

const TABS = ['users', 'tunnels', 'health', 'audit'] as const

export const adminPage: Page = (main, ctx) => {
  const tab = (TABS as readonly string[]).includes(ctx.params[0] ?? '') ? ctx.params[0]! : 'users'
  const body = h('div', { id: `admin-${tab}` })
  fill(main, h('h1', {}, 'Admin'),
    h('nav', { class: 'tabs', 'aria-label': 'Admin' }, ...TABS.map(t => h('a', { href: `#/admin/${t}`, 'aria-current': t === tab ? 'page' : undefined }, t[0]!.toUpperCase() + t.slice(1)))),
    body)
  switch (tab) {
    case 'tunnels': return allTunnels(body)
    case 'health': return health(body)
    case 'audit': return audit(body)
    default: return users(body, ctx.session.user.id)
  }
}

function users (el: HTMLElement, me: string): void {
  const rows = h('tbody')
  const status = h('div', { id: 'users-status' })
  const name = h('input', { name: 'name', required: true, maxlength: 64 })
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'new-password', required: true })
  const role = h('select', { name: 'role' }, h('option', { value: 'user' }, 'user'), h('option', { value: 'admin' }, 'admin'))
  const fail = (err: unknown): void => fill(status, notice((err as Error).message))
  const load = async (): Promise<void> => {
    const list = await get<User[]>('/v1/users')
    fill(rows, ...list.map(u => h('tr', { 'data-name': u.name },
      h('td', {}, u.name), h('td', {}, u.role), h('td', {}, when(u.createdAt)), h('td', { class: 'user-state' }, u.disabled ? 'disabled' : 'active'),
      h('td', {}, u.id === me ? null : h('button', { type: 'button', class: u.disabled ? '' : 'danger', onclick: () => { call('PATCH', `/v1/users/${u.id}`, { disabled: !u.disabled }).then(load, fail) } }, `${u.disabled ? 'Enable' : 'Disable'} ${u.name}`),
        ' ', h('button', { type: 'button', class: 'secondary', onclick: () => { void plan(u) } }, `Plan of ${u.name}`)))))
  }
  const planBox = h('div', { id: 'plan' })
  const plan = async (u: User): Promise<void> => {
    const p = await get<{ defaults: Limits, overrides: Partial<Limits>, effective: Limits }>(`/v1/users/${u.id}/limits`)
    const inputs = Object.keys(p.defaults).map(k => {
      const v = p.overrides[k as keyof Limits]
      return { k, input: h('input', { name: k, type: 'number', min: 0, value: v ?? '', placeholder: `default: ${p.defaults[k as keyof Limits] ?? 'unlimited'}` }) }
    })
    fill(planBox, h('form', { class: 'card', onsubmit: (e: Event) => {
      e.preventDefault()
      const body = Object.fromEntries(inputs.map(({ k, input }) => [k, input.value === '' ? null : Number(input.value)]))
      call('PUT', `/v1/users/${u.id}/limits`, body).then(() => fill(status, notice(`Plan of ${u.name} saved.`, 'ok')), fail)
    } }, h('h2', {}, `Plan overrides for ${u.name}`), ...inputs.map(({ k, input }) => field(`${k} (empty: the default)`, input)), h('button', { type: 'submit' }, 'Save plan')))
  }
  fill(el,
    h('form', { class: 'card', id: 'new-user', onsubmit: (e: Event) => { e.preventDefault(); call('POST', '/v1/users', { name: name.value, password: password.value, role: role.value }).then(load, fail) } },
      h('h2', {}, 'New user'), field('Name', name), field('Password', password), field('Role', role), h('button', { type: 'submit' }, 'Create user')),
    status,
    h('div', { class: 'scroll' }, h('table', { id: 'users' }, h('thead', {}, h('tr', {}, ...['Name', 'Role', 'Created', 'State', ''].map(c => h('th', { scope: 'col' }, c)))), rows)),
    planBox)
  load().catch(fail)
}

function allTunnels (el: HTMLElement): () => void {
  const rows = h('tbody')
  fill(el, h('div', { class: 'scroll' }, h('table', { id: 'all-tunnels' },
    h('thead', {}, h('tr', {}, ...['Owner', 'Name', 'State', 'Public address', 'Connections', 'In', 'Out', 'Client'].map(c => h('th', { scope: 'col' }, c)))), rows)))
  return onSnapshot(s => fill(rows, ...s.tunnels.map(t => h('tr', { 'data-id': t.id },
    h('td', {}, t.userName ?? t.userId), h('td', {}, h('a', { href: `#/tunnels/${encodeURIComponent(t.id)}` }, t.name)), h('td', {}, state(t)),
    h('td', {}, h('code', {}, publicAddress(t))), h('td', { class: 'num' }, t.connections ?? 0), h('td', { class: 'num' }, bytes(t.bytesIn ?? 0)),
    h('td', { class: 'num' }, bytes(t.bytesOut ?? 0)), h('td', {}, t.clientAddress ?? '—')))))
}

interface Health { sessions: number, tunnels: number, streams: number, memory: { rss: number, heapUsed: number }, eventLoopLagSeconds: number | null, store: { calls: number, p50Seconds: number | null, p99Seconds: number | null } }

function health (el: HTMLElement): () => void {
  const render = async (): Promise<void> => {
    const s = await get<Health>('/v1/admin/health')
    const ms = (v: number | null): string => v === null ? '—' : `${(v * 1000).toFixed(2)} ms`
    fill(el, h('dl', { class: 'facts', id: 'health' },
      h('dt', {}, 'Client sessions'), h('dd', { class: 'sessions' }, String(s.sessions)),
      h('dt', {}, 'Tunnels'), h('dd', { class: 'tunnels' }, String(s.tunnels)),
      h('dt', {}, 'Open visitor streams'), h('dd', { class: 'streams' }, String(s.streams)),
      h('dt', {}, 'Memory (RSS / heap used)'), h('dd', {}, `${bytes(s.memory.rss)} / ${bytes(s.memory.heapUsed)}`),
      h('dt', {}, 'Event-loop lag (p99)'), h('dd', {}, ms(s.eventLoopLagSeconds)),
      h('dt', {}, 'Store latency (p50 / p99)'), h('dd', {}, `${ms(s.store.p50Seconds)} / ${ms(s.store.p99Seconds)}`)))
  }
  const fail = (err: unknown): void => fill(el, notice((err as Error).message))
  render().catch(fail)
  const timer = setInterval(() => { render().catch(fail) }, 5000)
  return () => clearInterval(timer)
}

function audit (el: HTMLElement): void {
  const rows = h('tbody')
  const actor = h('input', { name: 'actor', placeholder: 'user id' })
  const action = h('input', { name: 'action', placeholder: 'e.g. token.' })
  let next: number | null = null
  const more = h('button', { type: 'button', class: 'secondary' }, 'Older entries')
  const load = async (append: boolean): Promise<void> => {
    const q = new URLSearchParams({ limit: '100' })
    if (actor.value !== '') q.set('actor', actor.value)
    if (append && next !== null) q.set('before', String(next))
    const page = await get<{ entries: AuditEntry[], next: number | null }>(`/v1/audit?${q.toString()}`)
    next = page.next
    more.hidden = next === null
    const shown = page.entries.filter(e => e.action.startsWith(action.value))
    const tr = shown.map(e => h('tr', {}, h('td', {}, when(e.at)), h('td', {}, e.actorName ?? '—'), h('td', { class: 'action' }, e.action), h('td', {}, e.target ?? ''), h('td', {}, e.address ?? ''), h('td', {}, e.details === null ? '' : JSON.stringify(e.details))))
    if (append) rows.append(...tr); else fill(rows, ...tr)
  }
  const fail = (err: unknown): void => fill(rows, h('tr', {}, h('td', { colspan: 6 }, (err as Error).message)))
  more.addEventListener('click', () => { load(true).catch(fail) })
  fill(el, h('form', { class: 'card', id: 'audit-filter', onsubmit: (e: Event) => { e.preventDefault(); load(false).catch(fail) } }, field('Actor', actor), field('Action starts with', action), h('button', { type: 'submit' }, 'Filter')),
    h('div', { class: 'scroll' }, h('table', { id: 'audit' }, h('thead', {}, h('tr', {}, ...['When', 'Who', 'Action', 'Target', 'Address', 'Details'].map(c => h('th', { scope: 'col' }, c)))), rows)), more)
  load(false).catch(fail)
}
