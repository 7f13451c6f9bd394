/**
 * How the client reaches its relay: the TLS control port (`tls`), a WebSocket on the relay's
 * shared HTTPS port (`wss`) or HTTP port (`ws`), each straight or through a proxy, and `auto`,
 * which tries them fastest first within a few seconds each and remembers per relay what
 * worked. Every way ends in the same mport TLS session with the relay's control certificate,
 * verified (pinned, CA, first use) under the relay's control address, so the transport never
 * changes who the client trusts.
 */
import { MportError, RelayUnreachableError } from '../errors.js'
import { proxyAuthorization } from '../transport/http-connect.js'
import { dialThrough } from '../transport/proxy-dial.js'
import { proxyFromEnv, type ProxiedScheme } from '../transport/proxy-env.js'
import type { ProxyConfig } from '../transport/proxy-url.js'
import { connectTcp, formatHostPort } from '../transport/tcp.js'
import { connectTls, type ConnectTlsOptions, type TlsConnection } from '../transport/tls.js'
import { TRANSPORTS, type TransportMemory, type TransportName } from '../transport/transport-memory.js'
import { connectWebSocket } from '../transport/websocket-connect.js'

/** A transport, or `auto`: direct TLS, then wss, then ws, remembering what worked. */
export type TransportChoice = 'auto' | TransportName

/** Accepted values of the `transport` option and flag. */
export const TRANSPORT_CHOICES: readonly TransportChoice[] = ['auto', ...TRANSPORTS]

/** Default budget of each attempt of `auto`. */
export const DEFAULT_AUTO_ATTEMPT_TIMEOUT = 4_000 // ms
/** `auto` starts with a remembered slower transport for this long, then tries the faster ones first again. */
export const DEFAULT_RETRY_FASTER_AFTER = 10 * 60_000 // ms

/** The relay's certificate checks, as connectTls takes them. */
export type RelayTrust = Pick<ConnectTlsOptions, 'servername' | 'ca' | 'fingerprint' | 'insecure' | 'knownRelays'>

/** Options of {@link dialRelay}. */
export interface RelayDialOptions {
  /** The relay's host and TLS control port (the address its certificate is remembered under). */
  host: string
  port: number
  /** The relay's shared HTTPS port, for wss (default 443). */
  httpsPort: number
  /** The relay's shared HTTP port, for ws (default 80). */
  httpPort: number
  transport: TransportChoice
  /** A proxy for every transport; `env`: from HTTPS_PROXY/http_proxy/ALL_PROXY/NO_PROXY; undefined: none. */
  proxy: ProxyConfig | 'env' | undefined
  env: NodeJS.ProcessEnv
  trust: RelayTrust
  /** Budget of one transport given by name (TCP, proxy, WebSocket and TLS together). */
  timeout: number // ms
  /** Budget of each attempt of `auto`. */
  attemptTimeout: number // ms
  /** Where `auto` remembers what worked; undefined: nothing remembered. */
  memory: TransportMemory | undefined
  retryFasterAfter: number // ms
  now: () => number
}

/** A verified relay connection, with the transport that carried it. */
export interface RelayConnection extends TlsConnection {
  transport: TransportName
  /** The proxy it went through (its label, never its credentials). */
  proxy: string | undefined
}

/** Errors after which another transport cannot help: the relay is not who it should be, or the proxy refuses us. */
const FINAL = new Set(['MPORT_ERR_CERT_MISMATCH', 'MPORT_ERR_CERT_UNTRUSTED', 'MPORT_ERR_PROXY_AUTH_FAILED', 'MPORT_ERR_INVALID_CONFIG'])

/** Connects to the relay over the chosen transport (for `auto`: the first that works, in the order of {@link autoOrder}). */
export async function dialRelay (o: RelayDialOptions): Promise<RelayConnection> {
  if (o.transport !== 'auto') return await dialTransport(o, o.transport, o.timeout)
  const key = formatHostPort(o.host, o.port)
  const order = autoOrder(await o.memory?.get(key).catch(() => undefined), o.now(), o.retryFasterAfter)
  const failures: string[] = []
  for (const name of order) {
    try {
      const conn = await dialTransport(o, name, o.attemptTimeout)
      await o.memory?.remember(key, name, o.now()).catch(() => {})
      return conn
    } catch (err) {
      if (err instanceof MportError && FINAL.has(err.code)) throw err
      failures.push(`${describe(o, name)}: ${reasonOf(err)}`)
    }
  }
  throw new RelayUnreachableError(key, `no transport worked (${failures.join('; ')})`)
}

/**
 * The order `auto` tries transports in: fastest first, except that a slower one that worked
 * within `retryFasterAfter` goes first (the faster ones follow, and are tried first again later).
 */
export function autoOrder (remembered: { transport: TransportName, at: number } | undefined, now: number, retryFasterAfter: number): TransportName[] {
  if (remembered === undefined || remembered.transport === 'tls' || now - remembered.at >= retryFasterAfter) return [...TRANSPORTS]
  return [remembered.transport, ...TRANSPORTS.filter(t => t !== remembered.transport)]
}

/** The transports faster than `current`, fastest first (what a background check tries). */
export function fasterThan (current: TransportName): TransportName[] {
  return TRANSPORTS.slice(0, TRANSPORTS.indexOf(current))
}

/** One transport, under one deadline. */
export async function dialTransport (o: RelayDialOptions, name: TransportName, timeout: number): Promise<RelayConnection> {
  const started = o.now()
  const left = (): number => Math.max(1, timeout - (o.now() - started))
  const proxy = proxyFor(o, name === 'ws' ? 'http' : 'https')
  const tlsOpts = { host: o.host, port: o.port, ...o.trust }
  // What carries the connection so far, destroyed when a later step fails.
  let carrier: { destroy (): void } | undefined
  try {
    if (name === 'tls') {
      // Straight to the control port keeps the reused read buffer (no proxy socket in between).
      if (proxy === undefined) return { ...await connectTls({ ...tlsOpts, timeout, reuseReadBuffer: true }), transport: name, proxy: undefined }
      const socket = await dialThrough({ host: o.host, port: o.port, proxy, timeout })
      carrier = socket
      return { ...await connectTls({ ...tlsOpts, socket, timeout: left() }), transport: name, proxy: proxy.label }
    }
    const port = name === 'wss' ? o.httpsPort : o.httpPort
    // A plain-HTTP WebSocket through an HTTP proxy is an ordinary (absolute-form) request to
    // the proxy, for proxies that forward HTTP but refuse CONNECT; wss needs CONNECT.
    const plainViaHttp = name === 'ws' && proxy?.kind === 'http'
    const raw = proxy === undefined
      ? undefined
      : plainViaHttp ? await connectTcp({ host: proxy.host, port: proxy.port, timeout }) : await dialThrough({ host: o.host, port, proxy, timeout })
    carrier = raw
    const auth = plainViaHttp ? proxyAuthorization(proxy) : undefined
    const ws = await connectWebSocket({
      scheme: name,
      host: o.host,
      port,
      ...(raw !== undefined ? { socket: raw } : {}),
      ...(plainViaHttp ? { absoluteForm: true } : {}),
      ...(auth !== undefined ? { headers: { 'Proxy-Authorization': auth } } : {}),
      timeout: left(),
    })
    carrier = ws
    return { ...await connectTls({ ...tlsOpts, socket: ws, timeout: left() }), transport: name, proxy: proxy?.label }
  } catch (err) {
    carrier?.destroy()
    throw err
  }
}

function proxyFor (o: RelayDialOptions, scheme: ProxiedScheme): ProxyConfig | undefined {
  if (o.proxy === 'env') return proxyFromEnv(o.env, scheme, o.host)
  return o.proxy
}

/** `tls (port 7835)`, `wss (port 443)`, … for the list of failed attempts. */
function describe (o: RelayDialOptions, name: TransportName): string {
  return `${name} (port ${name === 'tls' ? o.port : name === 'wss' ? o.httpsPort : o.httpPort})`
}

function reasonOf (err: unknown): string {
  const message = err instanceof Error ? err.message : String(err)
  return message.replace(/^cannot reach relay \S+: /, '')
}

/** The Client's options about the way to the relay (part of ClientOptions). */
export interface ClientTransportOptions {
  /** How to reach the relay (default `tls`, its control port); `auto` falls back to wss, then ws. */
  transport?: TransportChoice
  /** The relay's shared ports, for wss and ws (defaults 443 and 80). */
  relayPorts?: { https?: number, http?: number }
  /**
   * A proxy to reach the relay through (parseProxyUrl: `http://…` CONNECT, `socks5://`,
   * `socks5h://`), or `env` for HTTPS_PROXY / http_proxy / ALL_PROXY / NO_PROXY; default none.
   */
  proxy?: ProxyConfig | 'env'
  /** The environment `proxy: 'env'` reads (default process.env). */
  env?: NodeJS.ProcessEnv
  /** Where `auto` remembers per relay what worked (TransportMemory.default() in mport-connect); default: this Client only. */
  transportMemory?: TransportMemory
  /** Budget of each attempt of `auto`, in ms (default 4000). */
  autoAttemptTimeout?: number
  /** Under `auto` on a slower transport, check the faster ones this often, in ms (default 5 min). */
  fasterCheckInterval?: number
}

/** The dial options for one connection of a Client. */
export function relayDialOptions (o: ClientTransportOptions & RelayTrust, relay: { host: string, port: number }, timeout: number, memory: TransportMemory | undefined): RelayDialOptions {
  return {
    host: relay.host,
    port: relay.port,
    httpsPort: o.relayPorts?.https ?? 443,
    httpPort: o.relayPorts?.http ?? 80,
    transport: o.transport ?? 'tls',
    proxy: o.proxy,
    env: o.env ?? process.env,
    trust: {
      ...(o.servername !== undefined ? { servername: o.servername } : {}),
      ...(o.ca !== undefined ? { ca: o.ca } : {}),
      ...(o.fingerprint !== undefined ? { fingerprint: o.fingerprint } : {}),
      ...(o.insecure === true ? { insecure: true } : {}),
      ...(o.knownRelays !== undefined ? { knownRelays: o.knownRelays } : {}),
    },
    timeout,
    attemptTimeout: Math.min(timeout, o.autoAttemptTimeout ?? DEFAULT_AUTO_ATTEMPT_TIMEOUT),
    memory: o.transportMemory ?? memory,
    retryFasterAfter: DEFAULT_RETRY_FASTER_AFTER,
    now: Date.now,
  }
}

/** How often a Client under `auto` on a slower transport checks whether a faster one works again. */
export const DEFAULT_FASTER_CHECK_INTERVAL = 5 * 60_000 // ms

/**
 * While a Client under `auto` is connected over a slower transport: now and then, dials the
 * faster ones (fully, the relay's certificate checked, then closed). One that works is
 * remembered and reported; the next connection starts with it. The live session is never
 * moved: its visitors' connections would break.
 */
export class FasterTransportCheck {
  readonly #o: RelayDialOptions
  readonly #current: TransportName
  readonly #intervalMs: number
  readonly #onFound: (transport: TransportName) => void
  #timer: NodeJS.Timeout | undefined
  #stopped = false

  constructor (o: RelayDialOptions, current: TransportName, intervalMs: number, onFound: (transport: TransportName) => void) {
    this.#o = o
    this.#current = current
    this.#intervalMs = intervalMs
    this.#onFound = onFound
    this.#schedule()
  }

  stop (): void {
    this.#stopped = true
    clearTimeout(this.#timer)
  }

  #schedule (): void {
    if (this.#stopped) return
    this.#timer = setTimeout(() => { void this.#check().then(found => { if (!found) this.#schedule() }) }, this.#intervalMs)
    this.#timer.unref()
  }

  async #check (): Promise<boolean> {
    for (const name of fasterThan(this.#current)) {
      if (this.#stopped) return true
      try {
        const conn = await dialTransport(this.#o, name, this.#o.attemptTimeout)
        conn.socket.destroy()
        if (this.#stopped) return true
        await this.#o.memory?.remember(formatHostPort(this.#o.host, this.#o.port), name, this.#o.now()).catch(() => {})
        this.#onFound(name)
        return true
      } catch {
        // still blocked: the next one, or the next check
      }
    }
    return false
  }
}
