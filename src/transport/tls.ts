/**
 * The TLS transport: a listener that only completes handshakes for ALPN `mport/1` (each under
 * a deadline, never blocking other accepts), and a dialer that decides trust in a fixed
 * order: insecure → pinned fingerprint → CA chain and hostname → trust on first use.
 * Both ends speak TLS 1.3 only, so the keying-material exporter behind exportAuthBinding is
 * always bound to the full handshake.
 */
import type { AddressInfo } from 'node:net'
import net from 'node:net'
import type { Duplex } from 'node:stream'
import tls from 'node:tls'
import {
  CertificateMismatchError, CertificateUntrustedError, HandshakeTimeoutError, InvalidConfigError, RelayUnreachableError,
} from '../errors.js'
import type { ChunkSource } from '../mux/chunk-source.js'
import { fingerprintDer, parseFingerprint } from './certs.js'
import type { KnownRelays } from './known-relays.js'
import { ReusedReadBuffer } from './reused-read-buffer.js'
import { DEFAULT_CONNECT_TIMEOUT, formatHostPort, setKeepAlive, setNoDelay, timeoutReason, unreachableReason } from './tcp.js'

/** The only application protocol a relay and a client negotiate. */
export const ALPN_PROTOCOL = 'mport/1'
/** Label of the RFC 5705 / RFC 8446 §7.5 exporter used for the auth channel binding. */
export const AUTH_BINDING_LABEL = 'EXPORTER-mport-auth'
/** Length of the exported auth binding, in bytes. */
export const AUTH_BINDING_LENGTH = 32
/** Default deadline for a client's TLS handshake on the relay's listener, in ms. */
export const DEFAULT_HANDSHAKE_TIMEOUT = 10_000 // ms
const MIN_VERSION = 'TLSv1.3'
/**
 * TLS 1.3 suites, AES-128-GCM first: as strong as this link needs (what OpenSSH's
 * aes128-gcm gives) and cheaper per byte than Node's default AES-256-GCM.
 */
export const CIPHER_SUITES = 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256'

const ignore = (): void => {}
const EMPTY = Buffer.alloc(0)

// ---- Listener ----

/** Options of {@link listenTls}. */
export interface ListenTlsOptions {
  /** Address to bind (default: all interfaces). */
  host?: string
  /** Port to bind; 0 picks a free one (read it from `TlsListener.address`). */
  port: number
  /** PEM certificate, with its chain. */
  cert: string | Buffer
  /** PEM private key of `cert`. */
  key: string | Buffer
  /** A client that has not completed the TLS handshake within this many ms is dropped (default 10 000). */
  handshakeTimeout?: number
  /** Errors of the listening socket itself (for example EMFILE on accept); the listener keeps going. */
  onError?: (err: Error) => void
  /** Bind in this process even in a node:cluster worker (default false: workers share the primary's listener). */
  exclusive?: boolean
  /** A client failed before it was handed over: bad handshake, wrong ALPN, handshake timeout. */
  onClientError?: (err: Error, remoteAddress: string | undefined) => void
}

/** A listening relay socket, as {@link listenTls} resolves it. */
export interface TlsListener {
  /** The bound address, with the actual port when 0 was asked for. */
  address: AddressInfo
  /** The underlying Node TLS server, for listeners of its own events. */
  server: tls.Server
  /** TCP connections accepted and not yet closed, handshaking or handed over. */
  readonly connections: number
  /** Stops accepting and destroys every socket this listener accepted. */
  close (): Promise<void>
}

/**
 * Listens for mport clients. `onConnection` receives each socket once its TLS handshake has
 * completed with ALPN `mport/1`; it has no-delay set and an 'error' guard attached, so an
 * owner that only listens for 'close' cannot crash the process.
 */
export function listenTls (opts: ListenTlsOptions, onConnection: (socket: tls.TLSSocket) => void): Promise<TlsListener> {
  const handshakeTimeout = opts.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT
  if (!Number.isFinite(handshakeTimeout) || handshakeTimeout <= 0) {
    return Promise.reject(new InvalidConfigError('handshakeTimeout', 'must be a positive number of milliseconds'))
  }
  const server = tls.createServer({
    cert: opts.cert,
    key: opts.key,
    minVersion: MIN_VERSION,
    ciphers: CIPHER_SUITES,
    ALPNProtocols: [ALPN_PROTOCOL],
    // Enforced by Node per socket from accept to the end of the handshake (not an idle timer).
    handshakeTimeout,
    noDelay: true,
    keepAlive: true,
    keepAliveInitialDelay: 30_000,
  })
  // Accepted TCP sockets (one per connection, handshaking or not) and the TLS sockets handed
  // over, so close() can end both kinds.
  const raw = new Set<net.Socket>()
  const handed = new Set<net.Socket>()
  const track = (set: Set<net.Socket>, socket: net.Socket): void => {
    set.add(socket)
    socket.once('close', () => set.delete(socket))
  }
  let closing = false
  const clientError = (err: Error, socket: net.Socket): void => {
    socket.destroy()
    if (!closing) opts.onClientError?.(err, socket.remoteAddress) // during close() these are our own doing
  }

  server.on('connection', (socket: net.Socket) => {
    socket.on('error', ignore) // errors surface (and are handled) on the TLS socket that wraps it
    track(raw, socket)
  })
  server.on('tlsClientError', (err: Error & { code?: string }, socket: tls.TLSSocket) => {
    socket.on('error', ignore)
    clientError(err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT' ? new HandshakeTimeoutError(handshakeTimeout, 'TLS handshake') : err, socket)
  })
  server.on('secureConnection', (socket: tls.TLSSocket) => {
    socket.on('error', ignore)
    if (closing) { socket.destroy(); return }
    // A client that offered other protocols already failed with no_application_protocol;
    // one that offered none completes the handshake and is closed here.
    if (socket.alpnProtocol !== ALPN_PROTOCOL) {
      clientError(new Error(`client did not negotiate ALPN "${ALPN_PROTOCOL}"`), socket)
      return
    }
    track(handed, socket)
    setNoDelay(socket)
    try {
      onConnection(socket)
    } catch (err) {
      socket.destroy()
      opts.onError?.(err as Error)
    }
  })

  return new Promise((resolve, reject) => {
    const onListenError = (err: Error): void => reject(err)
    server.once('error', onListenError)
    server.listen({ port: opts.port, host: opts.host, exclusive: opts.exclusive === true }, () => {
      server.off('error', onListenError)
      // After listen, 'error' means accept() failed (EMFILE, ENFILE, …): report it and keep listening.
      server.on('error', err => opts.onError?.(err))
      const address = server.address() as AddressInfo
      let closed: Promise<void> | undefined
      resolve({
        address,
        server,
        get connections () { return raw.size },
        close () {
          closed ??= (async () => {
            closing = true
            const stopped = new Promise<void>(resolveClose => server.close(() => resolveClose()))
            const gone = [...handed, ...raw].map(socket => new Promise<void>(resolveGone => {
              if (socket.closed) resolveGone()
              else socket.once('close', () => resolveGone())
              socket.destroy()
            }))
            await Promise.all([stopped, ...gone])
          })()
          return closed
        },
      })
    })
  })
}

// ---- Dialer ----

/**
 * How the relay's certificate came to be trusted: `ca` (a CA chain and the hostname),
 * `pinned` (the `fingerprint` option), `tofu-new` (first use, now remembered), `tofu-known`
 * (matches the remembered fingerprint), `insecure` (not checked).
 */
export type TrustMode = 'ca' | 'pinned' | 'tofu-new' | 'tofu-known' | 'insecure'

/**
 * Options of {@link connectTls}. Trust is decided in this order: `insecure`, `fingerprint`,
 * the CA chain (with `ca`) and hostname, then `knownRelays`; with none of them matching, the
 * connection fails with CertificateUntrustedError.
 */
export interface ConnectTlsOptions {
  /** Relay host name or IP address. */
  host: string
  /** Relay control port. */
  port: number
  /** Name to send in SNI and to verify the certificate against (default: `host` unless it is an IP). */
  servername?: string
  /** Extra trusted CA certificates (PEM), added to the bundled Mozilla set. */
  ca?: string | Buffer | Array<string | Buffer>
  /** Accept exactly this certificate (`sha256:…`, colons and case free); no CA chain needed. */
  fingerprint?: string
  /** Accept any certificate. For tests and for networks where TLS is only a wrapper. */
  insecure?: boolean
  /** Trust on first use: when CA verification fails, pin the first fingerprint seen for `host:port`. */
  knownRelays?: KnownRelays
  /** Deadline for TCP connect plus TLS handshake, in ms (default 10 000). */
  timeout?: number
  /**
   * Read into one reused buffer (the socket's `onread`): the bytes then come through
   * `TlsConnection.input`, not 'data' events. Saves an allocation and a stream push per record.
   */
  reuseReadBuffer?: boolean
  /**
   * Run TLS over this already open byte stream (a WebSocket, a proxy tunnel) instead of a new
   * TCP connection to `host:port`, which then only names the relay (SNI, known relays, errors).
   */
  socket?: Duplex
}

/** A verified connection to a relay, as {@link connectTls} resolves it. */
export interface TlsConnection {
  /** The TLS socket, after the handshake and verification; nothing has been written to it yet. */
  socket: tls.TLSSocket
  /** With `reuseReadBuffer`: where the received bytes come from (the socket emits no 'data'). */
  input?: ChunkSource
  /** The relay certificate's `sha256:` fingerprint. */
  fingerprint: string
  /** Which rule accepted the certificate. */
  trust: TrustMode
}

/**
 * Dials a relay and verifies it. Rejects with RelayUnreachableError (refused, unresolvable,
 * timed out, TLS failure, no ALPN `mport/1`), CertificateMismatchError (pinned or remembered
 * fingerprint differs) or CertificateUntrustedError (no CA vouches for it and nothing pins it).
 */
export async function connectTls (opts: ConnectTlsOptions): Promise<TlsConnection> {
  const address = formatHostPort(opts.host, opts.port)
  const expected = opts.fingerprint === undefined ? undefined : parseFingerprint(opts.fingerprint)
  const timeout = opts.timeout ?? DEFAULT_CONNECT_TIMEOUT
  if (!Number.isFinite(timeout) || timeout <= 0) throw new InvalidConfigError('timeout', 'must be a positive number of milliseconds')

  // A reused read buffer needs a socket handle of its own, which a stream given in `socket` has not.
  const reader = opts.reuseReadBuffer === true && opts.socket === undefined ? new ReusedReadBuffer() : undefined
  const socket = await handshake(opts, address, timeout, reader)
  // Guard errors while verification awaits the known-relays file; remembered to fail below.
  let lateError: Error | undefined
  const guard = (err: Error): void => { lateError ??= err }
  socket.on('error', guard)
  try {
    const result = await verify(socket, opts, address, expected)
    if (lateError !== undefined || socket.destroyed) {
      throw new RelayUnreachableError(address, `connection lost after the TLS handshake: ${lateError === undefined ? 'closed by the relay' : unreachableReason(lateError)}`, lateError === undefined ? undefined : { cause: lateError })
    }
    socket.off('error', guard)
    return reader === undefined ? result : { ...result, input: reader }
  } catch (err) {
    socket.destroy()
    throw err
  }
}

/**
 * The TLS channel binding for the auth HMAC: 32 bytes of exported keying material, equal on
 * both ends of one connection and different for every other connection (a relayed or
 * replayed proof does not verify).
 */
export function exportAuthBinding (socket: tls.TLSSocket): Buffer {
  // In TLS 1.3 an empty context yields the same bytes as no context (RFC 8446 §7.5).
  return socket.exportKeyingMaterial(AUTH_BINDING_LENGTH, AUTH_BINDING_LABEL, EMPTY)
}

/** TCP connect plus TLS handshake under one deadline; resolves with no listeners of ours left. */
function handshake (opts: ConnectTlsOptions, address: string, timeout: number, reader: ReusedReadBuffer | undefined): Promise<tls.TLSSocket> {
  const servername = opts.servername ?? (net.isIP(opts.host) === 0 ? opts.host : undefined)
  const extraCa = opts.ca === undefined ? undefined : Array.isArray(opts.ca) ? opts.ca : [opts.ca]
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      ...(opts.socket !== undefined ? { socket: opts.socket } : { host: opts.host, port: opts.port }),
      ...(servername !== undefined ? { servername } : {}),
      ...(extraCa !== undefined ? { ca: [...tls.rootCertificates, ...extraCa] } : {}),
      // Verification happens after the handshake, in the order documented on connectTls;
      // nothing is written to the socket before it has passed.
      rejectUnauthorized: false,
      ALPNProtocols: [ALPN_PROTOCOL],
      minVersion: MIN_VERSION,
      ciphers: CIPHER_SUITES,
      ...(reader !== undefined ? { onread: reader.onread } : {}),
    })
    reader?.bind(socket)
    const timer = setTimeout(() => fail(undefined, timeoutReason(timeout)), timeout)
    const cleanup = (): void => {
      clearTimeout(timer)
      socket.off('secureConnect', onSecure)
      socket.off('error', onError)
      socket.off('close', onClose)
    }
    const fail = (cause: Error | undefined, reason: string): void => {
      cleanup()
      socket.on('error', ignore)
      socket.destroy()
      reject(new RelayUnreachableError(address, reason, cause === undefined ? undefined : { cause }))
    }
    const onError = (err: Error): void => fail(err, handshakeFailureReason(err))
    const onClose = (): void => fail(undefined, 'connection closed during the TLS handshake')
    const onSecure = (): void => {
      cleanup()
      setNoDelay(socket)
      setKeepAlive(socket)
      resolve(socket)
    }
    socket.once('secureConnect', onSecure)
    socket.once('error', onError)
    socket.once('close', onClose)
  })
}

async function verify (socket: tls.TLSSocket, opts: ConnectTlsOptions, address: string, expected: string | undefined): Promise<TlsConnection> {
  // ALPN first: a server that is not an mport relay should say so, not ask to be trusted.
  const alpn = socket.alpnProtocol
  if (alpn !== ALPN_PROTOCOL) {
    throw new RelayUnreachableError(address, typeof alpn === 'string'
      ? `the server negotiated ALPN "${alpn}" instead of "${ALPN_PROTOCOL}"; is this an mport relay?`
      : `the server did not negotiate ALPN "${ALPN_PROTOCOL}"; is this an mport relay, or is a TLS proxy in between?`)
  }
  const raw = socket.getPeerCertificate().raw as Buffer | undefined
  if (raw === undefined || raw.length === 0) throw new CertificateUntrustedError('the relay sent no certificate', 'none')
  const fingerprint = fingerprintDer(raw)
  const done = (trust: TrustMode): TlsConnection => ({ socket, fingerprint, trust })

  if (opts.insecure === true) return done('insecure')
  if (expected !== undefined) {
    if (fingerprint !== expected) throw new CertificateMismatchError(expected, fingerprint)
    return done('pinned')
  }
  if (socket.authorized) return done('ca')
  const reason = describeAuthorizationError(socket.authorizationError)
  if (opts.knownRelays === undefined) throw new CertificateUntrustedError(reason, fingerprint)
  const known = await opts.knownRelays.get(address)
  if (known === undefined) {
    await opts.knownRelays.remember(address, fingerprint)
    return done('tofu-new')
  }
  if (known !== fingerprint) throw new CertificateMismatchError(known, fingerprint)
  return done('tofu-known')
}

function describeAuthorizationError (err: Error | string | undefined): string {
  const code = typeof err === 'string' ? err : (err as { code?: string } | undefined)?.code ?? err?.message
  switch (code) {
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'SELF_SIGNED_CERT_IN_CHAIN': return 'self-signed certificate'
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE': return 'issued by an unknown certificate authority'
    case 'CERT_HAS_EXPIRED': return 'certificate expired'
    case 'CERT_NOT_YET_VALID': return 'certificate not yet valid'
    case 'ERR_TLS_CERT_ALTNAME_INVALID': return 'certificate does not name this host'
    case undefined: return 'verification failed'
    default: return code
  }
}

/** One line for a failure before 'secureConnect': system errors, TLS alerts, OpenSSL errors. */
function handshakeFailureReason (err: Error & { code?: string }): string {
  switch (err.code) {
    case 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL':
      return `the server refused ALPN "${ALPN_PROTOCOL}" (no_application_protocol); is this an mport relay?`
    case 'ERR_SSL_WRONG_VERSION_NUMBER':
      return 'TLS handshake failed: the server does not speak TLS on this port'
    case 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION':
    case 'ERR_SSL_UNSUPPORTED_PROTOCOL':
      return 'TLS handshake failed: the server does not support TLS 1.3'
    case 'ECONNRESET':
      return 'connection reset during the TLS handshake'
  }
  if (err.code?.startsWith('ERR_SSL_') === true) {
    // "…:error:0A0000EB:SSL routines:func:reason:file:line:" → reason
    const reason = /:error:[0-9A-Fa-f]+:[^:]*:[^:]*:([^:]+)/.exec(err.message)?.[1]
    return `TLS handshake failed: ${reason ?? err.code}`
  }
  return unreachableReason(err)
}
