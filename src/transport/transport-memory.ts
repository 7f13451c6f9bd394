/**
 * Which transport last reached each relay, for `--transport auto`: a small JSON file next to
 * known_relays.json (`~/.config/mport/transports.json`, mode 0600), so a client on a network
 * that blocks the direct port starts with what worked instead of waiting out the blocked one.
 *
 *   { "relays": { "relay.example.com:7835": { "transport": "wss", "at": "2026-…Z" } } }
 *
 * A damaged or unreadable file is ignored (it only orders the attempts; trust is elsewhere).
 */
import { mkdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import { writeAtomic } from './certs.js'
import { mportConfigDir } from './known-relays.js'

/** The ways to reach a relay: its TLS control port, WebSocket inside TLS (shared HTTPS port), WebSocket over plain HTTP (shared HTTP port). */
export type TransportName = 'tls' | 'wss' | 'ws'

/** Every transport, fastest first: the order `auto` tries them in. */
export const TRANSPORTS: readonly TransportName[] = ['tls', 'wss', 'ws']

/** A remembered transport and when it last worked. */
export interface RememberedTransport {
  transport: TransportName
  /** Milliseconds since the epoch. */
  at: number
}

/** The per-relay transport memory (`auto`'s); `path` undefined keeps it in memory only. */
export class TransportMemory {
  readonly path: string | undefined
  readonly #cache = new Map<string, RememberedTransport>()
  #loaded: Promise<void> | undefined
  #queue: Promise<unknown> = Promise.resolve()

  constructor (file: string | undefined) {
    this.path = file
  }

  /** `$XDG_CONFIG_HOME/mport/transports.json`, else `~/.config/mport/transports.json`. */
  static default (): TransportMemory {
    return new TransportMemory(path.join(mportConfigDir(), 'transports.json'))
  }

  /** What last worked for the relay at `hostPort`, if anything. */
  async get (hostPort: string): Promise<RememberedTransport | undefined> {
    await this.#load()
    return this.#cache.get(hostPort.toLowerCase())
  }

  /** Records that `transport` reached `hostPort` at `at` (ms). */
  async remember (hostPort: string, transport: TransportName, at = Date.now()): Promise<void> {
    await this.#load()
    const key = hostPort.toLowerCase()
    const had = this.#cache.get(key)
    this.#cache.set(key, { transport, at })
    // Written when the transport changes, or at most once a minute to keep its time fresh.
    if (this.path === undefined || (had?.transport === transport && at - had.at < 60_000)) return
    const file = this.path
    const write = async (): Promise<void> => {
      const relays = Object.fromEntries([...this.#cache].map(([k, v]) => [k, { transport: v.transport, at: new Date(v.at).toISOString() }]))
      await mkdir(path.dirname(file), { recursive: true, mode: 0o700 })
      await writeAtomic(file, JSON.stringify({ relays }, null, 2) + '\n', 0o600)
    }
    const next = this.#queue.then(write, write)
    this.#queue = next.catch(() => {})
    await next
  }

  #load (): Promise<void> {
    this.#loaded ??= (async () => {
      if (this.path === undefined) return
      let parsed: unknown
      try {
        parsed = JSON.parse(await readFile(this.path, 'utf8'))
      } catch {
        return // absent or damaged: start afresh
      }
      const relays = (parsed as { relays?: unknown } | null)?.relays
      if (typeof relays !== 'object' || relays === null) return
      for (const [k, v] of Object.entries(relays)) {
        const t = (v as { transport?: unknown }).transport
        const at = Date.parse(String((v as { at?: unknown }).at))
        if ((TRANSPORTS as readonly unknown[]).includes(t) && Number.isFinite(at)) this.#cache.set(k.toLowerCase(), { transport: t as TransportName, at })
      }
    })()
    return this.#loaded
  }
}
