/**
 * What a client keeps of its lease between processes: the relay's lease ticket and the last
 * public address of each tunnel. With them a restarted client reclaims its lease at once (the
 * relay replaces the dead session still holding it) and, once the lease is gone, asks for the
 * same random port or name again. The Client takes any LeaseStore; LeaseFile keeps one small
 * JSON file per relay and list of tunnels next to the user's mport config (mode 0600, written
 * atomically):
 *
 *   { "version": 1, "relay": "relay.example.com:7835", "pid": 4242,
 *     "ticket": { "id": "…", "secret": "…" }, "tunnels": { "web": { "id": 1, "port": 20061 } } }
 */
import { createHash } from 'node:crypto'
import { mkdirSync, rmSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { writeAtomicSync } from '../transport/certs.js'
import { mportConfigDir } from '../transport/known-relays.js'
import type { LeaseTicket } from './messages.js'
import type { TunnelSpec } from './spec.js'

/** The last public address the relay gave a tunnel, and the id the relay's lease knows it by. */
export interface RememberedTunnel {
  /** The tunnel's id in the lease: a restarted client asks under the same id, so the relay matches it (ids change when a reload replaces a tunnel). */
  id?: number
  /** tcp tunnels: the public port. */
  port?: number
  /** http/tls tunnels that asked for a random name: the label they got. */
  subdomain?: string
}

/** What a client remembers of its lease. */
export interface StoredLease {
  /** The relay's ticket for the lease: a secret (whoever holds it can take the tunnels over). */
  ticket?: LeaseTicket
  /** The last public address of each tunnel, by tunnel name. */
  tunnels: Record<string, RememberedTunnel>
}

/** Where a Client keeps its lease between processes (see `ClientOptions.leaseStore`). */
export interface LeaseStore {
  /** What was saved last, or undefined when nothing was (or it cannot be used). */
  load (): Promise<StoredLease | undefined>
  /** Replaces what is stored. */
  save (lease: StoredLease): Promise<void>
  /** Removes what is stored: the client keeps its lease in another store from now on (Client.setTunnels). */
  discard? (): Promise<void>
}

/** The default store: nothing survives the process (an embedder opts in to a store). */
export const memoryOnlyLeaseStore: LeaseStore = {
  load: () => Promise.resolve(undefined),
  save: () => Promise.resolve(),
}

/** Options of {@link LeaseFile}. */
export interface LeaseFileOptions {
  /** Told why a stored lease was ignored (a damaged file, another live client); default: process.emitWarning. */
  onWarning?: (message: string) => void
}

interface LeaseFileDoc {
  version: 1
  relay: string
  pid: number
  ticket?: LeaseTicket
  tunnels: Record<string, RememberedTunnel>
}

/**
 * A LeaseStore in one JSON file (mode 0600 in a 0700 directory, replaced atomically). A damaged
 * file is ignored with a warning and overwritten by the next save: a lost lease only costs the
 * addresses. The file names the process that wrote it; while that process is alive, another
 * one loads nothing and saves nothing, so two clients started with the same command do not
 * take the lease from each other.
 */
export class LeaseFile implements LeaseStore {
  readonly path: string
  readonly #relay: string
  readonly #warn: (message: string) => void
  /** Another live process owns the file: this one leaves it alone. */
  #foreign = false

  constructor (file: string, relay: string, options: LeaseFileOptions = {}) {
    this.path = file
    this.#relay = relay
    this.#warn = options.onWarning ?? (msg => process.emitWarning(msg, { code: 'MPORT_LEASE_FILE' }))
  }

  /**
   * The file for `relay` and this list of tunnels in `dir` (default: the mport config
   * directory's `leases/`): its name is a hash of the relay address and what each tunnel asks for.
   */
  static for (relay: string, tunnels: readonly TunnelSpec[], options: LeaseFileOptions & { dir?: string } = {}): LeaseFile {
    const key = JSON.stringify([relay.trim().toLowerCase(), tunnels.map(t => [t.name, t.kind ?? 'tcp', t.remotePort, t.subdomain ?? null, t.hostname ?? null])])
    const name = createHash('sha256').update(key).digest('hex').slice(0, 32)
    return new LeaseFile(path.join(options.dir ?? path.join(mportConfigDir(), 'leases'), `${name}.json`), relay, options)
  }

  async load (): Promise<StoredLease | undefined> {
    let text: string
    try {
      text = await readFile(this.path, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.#warn(`cannot read the lease file ${this.path} (${(err as Error).message}); starting a new lease`)
      return undefined
    }
    let doc: LeaseFileDoc
    try {
      doc = parseDoc(JSON.parse(text))
    } catch (err) {
      this.#warn(`the lease file ${this.path} is damaged (${(err as Error).message}); ignoring it`)
      return undefined
    }
    if (doc.pid !== process.pid && isAlive(doc.pid)) {
      this.#foreign = true
      this.#warn(`another client (pid ${doc.pid}) is using the lease file ${this.path}; this one takes a lease of its own and does not remember it`)
      return undefined
    }
    return { ...(doc.ticket !== undefined ? { ticket: doc.ticket } : {}), tunnels: doc.tunnels }
  }

  /**
   * Written synchronously (a small file, once per new address): what the client announces is on
   * disk before it announces it, so a kill -9 or Ctrl-C right after a tunnel event loses nothing.
   */
  save (lease: StoredLease): Promise<void> {
    if (this.#foreign) return Promise.resolve()
    const doc: LeaseFileDoc = { version: 1, relay: this.#relay, pid: process.pid, ...(lease.ticket !== undefined ? { ticket: lease.ticket } : {}), tunnels: lease.tunnels }
    try {
      mkdirSync(path.dirname(this.path), { recursive: true, mode: 0o700 })
      writeAtomicSync(this.path, JSON.stringify(doc, null, 2) + '\n', 0o600)
      return Promise.resolve()
    } catch (err) {
      return Promise.reject(err as Error)
    }
  }

  /** Deletes the file, unless another live process owns it. */
  discard (): Promise<void> {
    if (this.#foreign) return Promise.resolve()
    try {
      rmSync(this.path, { force: true })
      return Promise.resolve()
    } catch (err) {
      return Promise.reject(err as Error)
    }
  }
}


/** The file's document, checked member by member; throws with what is wrong. */
function parseDoc (v: unknown): LeaseFileDoc {
  if (!isObject(v)) throw new Error('not a JSON object')
  if (v.version !== 1) throw new Error(`unknown version ${JSON.stringify(v.version)}`)
  if (typeof v.relay !== 'string') throw new Error('no "relay"')
  if (!Number.isSafeInteger(v.pid) || (v.pid as number) <= 0) throw new Error('no "pid"')
  let ticket: LeaseTicket | undefined
  if (v.ticket !== undefined) {
    const tk = v.ticket
    if (!isObject(tk) || !isShortString(tk.id, 64) || !isShortString(tk.secret, 128)) throw new Error('a malformed "ticket"')
    ticket = { id: tk.id, secret: tk.secret }
  }
  if (!isObject(v.tunnels)) throw new Error('no "tunnels" object')
  const tunnels = Object.create(null) as Record<string, RememberedTunnel>
  for (const [name, r] of Object.entries(v.tunnels)) {
    if (!isObject(r)) throw new Error(`tunnel "${name}" is not an object`)
    const entry: RememberedTunnel = {}
    if (r.id !== undefined) {
      if (!Number.isInteger(r.id) || (r.id as number) < 1 || (r.id as number) > 0xffff_ffff) throw new Error(`tunnel "${name}" has a bad id`)
      entry.id = r.id as number
    }
    if (r.port !== undefined) {
      if (!Number.isInteger(r.port) || (r.port as number) < 1 || (r.port as number) > 65535) throw new Error(`tunnel "${name}" has a bad port`)
      entry.port = r.port as number
    }
    if (r.subdomain !== undefined) {
      if (!isShortString(r.subdomain, 63)) throw new Error(`tunnel "${name}" has a bad subdomain`)
      entry.subdomain = r.subdomain
    }
    tunnels[name] = entry
  }
  return { version: 1, relay: v.relay, pid: v.pid as number, ...(ticket !== undefined ? { ticket } : {}), tunnels }
}

function isObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function isShortString (v: unknown, max: number): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= max
}

/** True while a process with this id exists (EPERM: it exists, as another user's). */
function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
