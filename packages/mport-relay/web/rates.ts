/** Rates from successive snapshots of the same byte counters the API lists: bytes per second per tunnel. */
import type { Snapshot } from './live.js'

export class Rates {
  #prev = new Map<string, { at: number, total: number }>()
  #rate = new Map<string, number>()

  update (s: Snapshot): void {
    const seen = new Set<string>()
    for (const t of s.tunnels) {
      seen.add(t.id)
      const total = (t.bytesIn ?? 0) + (t.bytesOut ?? 0)
      const p = this.#prev.get(t.id)
      if (p !== undefined && s.at > p.at) this.#rate.set(t.id, Math.max(0, (total - p.total) * 1000 / (s.at - p.at)))
      this.#prev.set(t.id, { at: s.at, total })
    }
    for (const id of [...this.#prev.keys()]) if (!seen.has(id)) { this.#prev.delete(id); this.#rate.delete(id) }
  }

  of (id: string): number { return this.#rate.get(id) ?? 0 }
}
