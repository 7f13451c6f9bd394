/**
 * Trust on first use, like ssh's known_hosts: the first certificate fingerprint seen for a
 * relay address is remembered, and a different one later is refused (CertificateMismatchError
 * in connectTls). The store is a small JSON file written atomically with mode 0600:
 *
 *   { "relays": { "relay.example.com:7835": { "fingerprint": "sha256:…", "firstSeen": "2026-…Z" } } }
 */
import { mkdir, readFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { InvalidConfigError } from '../errors.js'
import { parseFingerprint, writeAtomic } from './certs.js'

/** One remembered relay in the known-relays file. */
export interface KnownRelay {
  /** The relay certificate's `sha256:` fingerprint. */
  fingerprint: string
  /** ISO 8601 time the fingerprint was first remembered. */
  firstSeen: string
}

interface StoreFile {
  relays: Record<string, KnownRelay>
}

/**
 * The trust-on-first-use store: one JSON file mapping `host:port` to the fingerprint first
 * seen there. Pass it as `knownRelays` to connectTls; a damaged file is an InvalidConfigError,
 * never reset, since resetting would trust whatever answers next.
 */
export class KnownRelays {
  /** The JSON file; created (with its directory) on the first `remember`. */
  readonly path: string
  /** Serializes read-modify-write cycles within this process. */
  #queue: Promise<unknown> = Promise.resolve()

  constructor (file: string) {
    this.path = file
  }

  /** `$XDG_CONFIG_HOME/mport/known_relays.json`, else `~/.config/mport/known_relays.json`. */
  static default (): KnownRelays {
    return new KnownRelays(path.join(mportConfigDir(), 'known_relays.json'))
  }

  /** The fingerprint remembered for `host:port`, if any. */
  async get (hostPort: string): Promise<string | undefined> {
    const store = await this.#read()
    return Object.hasOwn(store.relays, normalizeKey(hostPort)) ? store.relays[normalizeKey(hostPort)]?.fingerprint : undefined
  }

  /** Remembers (or replaces) the fingerprint for `host:port`. */
  async remember (hostPort: string, fingerprint: string): Promise<void> {
    const fp = parseFingerprint(fingerprint)
    await this.#update(relays => { relays[normalizeKey(hostPort)] = { fingerprint: fp, firstSeen: new Date().toISOString() } })
  }

  /** Forgets `host:port` (after a deliberate certificate change on the relay). */
  async forget (hostPort: string): Promise<void> {
    await this.#update(relays => { delete relays[normalizeKey(hostPort)] })
  }

  /** Every remembered relay. */
  async list (): Promise<Record<string, KnownRelay>> {
    return (await this.#read()).relays
  }

  #update (change: (relays: Record<string, KnownRelay>) => void): Promise<void> {
    const run = async (): Promise<void> => {
      const store = await this.#read()
      change(store.relays)
      await mkdir(path.dirname(this.path), { recursive: true, mode: 0o700 })
      await writeAtomic(this.path, JSON.stringify(store, null, 2) + '\n', 0o600)
    }
    const next = this.#queue.then(run, run)
    this.#queue = next.catch(() => {})
    return next
  }

  async #read (): Promise<StoreFile> {
    let text: string
    try {
      text = await readFile(this.path, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { relays: Object.create(null) as Record<string, KnownRelay> }
      throw new InvalidConfigError('knownRelays', `cannot read ${this.path}: ${(err as Error).message}`)
    }
    // A damaged store is an error, never silently reset: resetting would trust whatever answers next.
    const damaged = (why: string): InvalidConfigError =>
      new InvalidConfigError('knownRelays', `${this.path} is damaged (${why}); fix or delete it`)
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch (err) {
      throw damaged((err as Error).message)
    }
    const relays = (parsed as { relays?: unknown } | null)?.relays
    if (typeof relays !== 'object' || relays === null || Array.isArray(relays)) throw damaged('no "relays" object')
    const out = Object.create(null) as Record<string, KnownRelay>
    for (const [key, value] of Object.entries(relays)) {
      const fp = (value as { fingerprint?: unknown } | null)?.fingerprint
      if (typeof fp !== 'string') throw damaged(`entry "${key}" has no fingerprint`)
      let normalized: string
      try {
        normalized = parseFingerprint(fp)
      } catch {
        throw damaged(`entry "${key}" has a malformed fingerprint`)
      }
      const firstSeen = (value as { firstSeen?: unknown }).firstSeen
      out[key] = { fingerprint: normalized, firstSeen: typeof firstSeen === 'string' ? firstSeen : '' }
    }
    return { relays: out }
  }
}

/** The user's mport config directory: `$XDG_CONFIG_HOME/mport`, else `~/.config/mport`. */
export function mportConfigDir (): string {
  const xdg = process.env.XDG_CONFIG_HOME
  const base = xdg !== undefined && path.isAbsolute(xdg) ? xdg : path.join(os.homedir(), '.config')
  return path.join(base, 'mport')
}

function normalizeKey (hostPort: string): string {
  return hostPort.trim().toLowerCase()
}
