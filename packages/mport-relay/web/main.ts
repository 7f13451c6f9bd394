/**
 * The dashboard's shell: asks the API for the cookie session, then shows the page the hash
 * names (#/tunnels, #/tunnels/<id>, #/connect, #/tokens, #/account, #/admin), or the login
 * form. Each page returns its cleanup, run when the hash changes.
 */
import 'uplot/dist/uPlot.min.css'
import './dashboard.css'
import { ApiError, call, get, setCsrf, type SessionState } from './api.js'
import { fill, h } from './dom.js'
import { closeLive, onLiveState, openLive } from './live.js'
import { loginPage } from './pages/login.js'
import { tunnelsPage } from './pages/tunnels.js'
import { tunnelPage } from './pages/tunnel.js'
import { connectPage } from './pages/connect.js'
import { tokensPage } from './pages/tokens.js'
import { accountPage } from './pages/account.js'
import { adminPage } from './pages/admin.js'

export interface PageContext { session: SessionState, params: string[] }
export type Page = (main: HTMLElement, ctx: PageContext) => (() => void) | void

const routes: Array<{ pattern: RegExp, page: Page, admin?: boolean }> = [
  { pattern: /^\/(?:tunnels)?$/, page: tunnelsPage },
  { pattern: /^\/tunnels\/([^/]+)$/, page: tunnelPage },
  { pattern: /^\/connect$/, page: connectPage },
  { pattern: /^\/tokens$/, page: tokensPage },
  { pattern: /^\/account$/, page: accountPage },
  { pattern: /^\/admin(?:\/(\w+))?$/, page: adminPage, admin: true },
]

const main = document.getElementById('main') as HTMLElement
const nav = document.getElementById('nav') as HTMLElement
const live = document.getElementById('live') as HTMLElement
let cleanup: (() => void) | undefined
let session: SessionState | undefined

function navigation (s: SessionState): void {
  const link = (href: string, text: string): HTMLElement => h('a', { href }, text)
  fill(nav,
    link('#/tunnels', 'Tunnels'), link('#/connect', 'Connect a machine'), link('#/tokens', 'Tokens'), link('#/account', 'Account'),
    s.user.role === 'admin' ? link('#/admin', 'Admin') : null,
    h('span', { class: 'who' }, s.user.name),
    h('button', { type: 'button', id: 'logout', onclick: () => { void logout() } }, 'Log out'))
}

function route (): void {
  cleanup?.()
  cleanup = undefined
  if (session === undefined) {
    fill(nav)
    cleanup = loginPage(main, { onSession: s => { start(s) } }) ?? undefined
    return
  }
  const path = location.hash.replace(/^#/, '') || '/'
  for (const a of nav.querySelectorAll('a')) a.toggleAttribute('aria-current', path.startsWith(a.getAttribute('href')!.slice(1)))
  for (const r of routes) {
    const m = r.pattern.exec(path)
    if (m === null) continue
    if (r.admin === true && session.user.role !== 'admin') break
    fill(main)
    cleanup = r.page(main, { session, params: m.slice(1).map(p => decodeURIComponent(p ?? '')) }) ?? undefined
    return
  }
  fill(main, h('h1', {}, 'Not found'), h('p', {}, 'There is no such page here.'))
}

function start (s: SessionState): void {
  session = s
  setCsrf(s.csrf)
  navigation(s)
  openLive(s.user.role === 'admin')
  route()
}

async function logout (): Promise<void> {
  await call('DELETE', '/v1/session').catch(() => undefined)
  closeLive()
  session = undefined
  setCsrf('')
  location.hash = '#/'
  route()
}

onLiveState(up => { live.textContent = up ? '● live' : '○ reconnecting'; live.className = up ? 'on' : 'off' })
window.addEventListener('hashchange', route)
get<SessionState>('/v1/session').then(start, (err: unknown) => {
  if (!(err instanceof ApiError && err.status === 401)) fill(main, h('p', { class: 'notice error', role: 'alert' }, String((err as Error).message)))
  else route()
})
