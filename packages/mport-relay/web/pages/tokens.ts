/** Tokens: create (shown once), list, revoke (the relay disconnects clients using it). */
import { call, get, type Token } from '../api.js'
import { expirySelect, field, fill, h, notice, tokenBody, when } from '../dom.js'
import { copyButton } from '../tunnel-view.js'
import type { Page } from '../main.js'

/** active, expires …, expired …, or revoked … */
function tokenState (t: Token, now = Date.now()): string {
  if (t.revokedAt !== null) return `revoked ${when(t.revokedAt)}`
  if (t.expiresAt !== null) return t.expiresAt <= now ? `expired ${when(t.expiresAt)}` : `active, expires ${when(t.expiresAt)}`
  return 'active'
}

export const tokensPage: Page = main => {
  const body = h('tbody')
  const status = h('div', { id: 'tokens-status' })
  const name = h('input', { name: 'name', required: true, maxlength: 64 })
  const expires = expirySelect()
  const load = async (): Promise<void> => {
    const tokens = await get<Token[]>('/v1/tokens')
    fill(body, ...tokens.map(t => h('tr', { 'data-id': t.id, 'data-name': t.name },
      h('td', {}, t.name), h('td', {}, h('code', {}, t.tokenId)), h('td', {}, when(t.createdAt)), h('td', {}, when(t.lastUsedAt)),
      h('td', { class: 'token-state' }, tokenState(t)),
      h('td', {}, t.revokedAt === null ? h('button', { type: 'button', class: 'danger revoke', onclick: () => { void revoke(t) } }, `Revoke ${t.name}`) : null))))
  }
  const revoke = async (t: Token): Promise<void> => {
    try {
      await call('DELETE', `/v1/tokens/${encodeURIComponent(t.id)}`)
      await load()
      fill(status, notice(`Token "${t.name}" revoked: clients using it were disconnected.`, 'ok'))
    } catch (err) { fill(status, notice((err as Error).message)) }
  }
  const create = async (): Promise<void> => {
    try {
      const made = await call<{ token: string, info: Token }>('POST', '/v1/tokens', tokenBody(name.value, expires.value))
      await load()
      fill(status, notice(`Token "${made.info.name}" created. It is shown only now:`, 'ok'), h('pre', { class: 'command', id: 'new-token' }, made.token), copyButton(made.token))
    } catch (err) { fill(status, notice((err as Error).message)) }
  }
  fill(main,
    h('h1', {}, 'Tokens'),
    h('form', { class: 'card', id: 'new-token-form', onsubmit: (e: Event) => { e.preventDefault(); void create() } }, field('Name', name), field('Expires', expires), h('button', { type: 'submit' }, 'Create token')),
    status,
    h('div', { class: 'scroll' }, h('table', { id: 'tokens' },
      h('thead', {}, h('tr', {}, ...['Name', 'Id', 'Created', 'Last used', 'State', ''].map(c => h('th', { scope: 'col' }, c)))), body)))
  load().catch((err: unknown) => fill(status, notice((err as Error).message)))
}
