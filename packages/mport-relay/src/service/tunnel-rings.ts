/**
 * Bounded rings of recent entries per live tunnel (recent visitors, recent requests): a ring
 * exists from the tunnel's `tunnel-up` to its `tunnel-down`, so an entry that arrives after its
 * tunnel closed leaves nothing behind. `perTunnel` 0 keeps nothing.
 */
import type { Relay } from 'mport/relay'

export class TunnelRings<T> {
  readonly #perTunnel: number
  readonly #rings = new Map<string, T[]>()

  constructor (relay: Relay, perTunnel: number) {
    this.#perTunnel = perTunnel
    if (perTunnel <= 0) return
    relay.on('tunnel-up', t => { const key = `${t.client}:${t.id}`; if (!this.#rings.has(key)) this.#rings.set(key, []) })
    relay.on('tunnel-down', t => this.#rings.delete(`${t.client}:${t.id}`))
  }

  get on (): boolean { return this.#perTunnel > 0 }

  /** Newest first; empty for a tunnel with none (or when off). */
  recent (tunnelKey: string): T[] {
    return [...(this.#rings.get(tunnelKey) ?? [])].reverse()
  }

  add (tunnelKey: string, entry: T): void {
    const ring = this.#rings.get(tunnelKey)
    if (ring === undefined) return
    ring.push(entry)
    if (ring.length > this.#perTunnel) ring.shift()
  }
}
