/**
 * The relay's static tokens: the owner's (from --token or the data dir) and the config file's
 * `tokens`, each name its own principal. A reload replaces the named ones; the owner's stays.
 * Static tokens are relay-level (`builtin`): no plan limits apply to them.
 */
import { tokenId, tokenKey, type Authenticator, type Credential } from 'mport/relay'

/** A static token and the name it authenticates as. */
export interface NamedToken { name: string, token: string }

/** A token that a reload removed (or whose value changed): whose it was and its id, to end its sessions. */
export interface RemovedToken { principalId: string, tokenId: string }

/** The principal id of a named static token (`token:<name>`); the owner's is `owner`. */
export function namedTokenPrincipal (name: string): string {
  return `token:${name}`
}

/** An Authenticator over the owner's token and the named static tokens, replaceable on reload. */
export class RelayTokens implements Authenticator {
  readonly #owner: Credential & { id: string }
  #named = new Map<string, Credential>()

  constructor (ownerToken: string, named: readonly NamedToken[] = []) {
    this.#owner = { id: tokenId(ownerToken), key: tokenKey(ownerToken), principal: { id: 'owner', name: 'owner', builtin: true } }
    this.replace(named)
  }

  resolve (id: string): Credential | undefined {
    return id === this.#owner.id ? this.#owner : this.#named.get(id)
  }

  /** Is `id` one of these tokens (so the store's revocation check leaves it alone)? */
  has (id: string): boolean {
    return this.resolve(id) !== undefined
  }

  /** Replaces the named tokens; returns those no longer valid (removed, or their value changed). */
  replace (named: readonly NamedToken[]): RemovedToken[] {
    const next = new Map<string, Credential>()
    for (const t of named) next.set(tokenId(t.token), { key: tokenKey(t.token), principal: { id: namedTokenPrincipal(t.name), name: t.name, builtin: true } })
    const removed: RemovedToken[] = []
    for (const [id, c] of this.#named) {
      if (next.get(id)?.principal.id !== c.principal.id) removed.push({ principalId: c.principal.id, tokenId: id })
    }
    this.#named = next
    return removed
  }
}
