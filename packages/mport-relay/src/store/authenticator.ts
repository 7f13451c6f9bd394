/**
 * The relay's Authenticator backed by the store: a tunnel token resolves to its user while the
 * token is not revoked and the user is not disabled. Each successful resolve records the
 * token's last use.
 */
import type { Authenticator, Credential } from 'mport/relay'
import type { Store } from './types.js'

/** The relay's Authenticator over the store: API tokens of enabled users open tunnels. */
export class StoreAuthenticator implements Authenticator {
  readonly #store: Store
  readonly #onError: (err: Error) => void

  constructor (store: Store, options: { onError?: (err: Error) => void } = {}) {
    this.#store = store
    this.#onError = options.onError ?? (() => {})
  }

  async resolve (tokenId: string): Promise<Credential | undefined> {
    const cred = await this.#store.credential(tokenId)
    if (cred === undefined) return undefined
    // Recording the use must not fail the login.
    await this.#store.touchToken(cred.token.id).catch((err: Error) => this.#onError(err))
    return { key: cred.key, principal: { id: cred.user.id, name: cred.user.name } }
  }

  /**
   * True while `tokenId` would still resolve: the relay polls this for its live sessions so a
   * revoked token (or a disabled user) is disconnected within one poll interval, even when the
   * revocation came from another process (the CLI, another relay on the same database).
   */
  async isValid (tokenId: string): Promise<boolean> {
    return (await this.#store.credential(tokenId)) !== undefined
  }
}
