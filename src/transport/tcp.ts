/**
 * Plain TCP helpers shared by the transports: socket tuning, `host:port` formatting, and a
 * dial with a deadline whose failures become one-line RelayUnreachableErrors.
 */
import net from 'node:net'
import { RelayUnreachableError } from '../errors.js'

/** Default for connect/handshake deadlines. */
export const DEFAULT_CONNECT_TIMEOUT = 10_000 // ms
/** Idle time before the first TCP keepalive probe. */
export const DEFAULT_KEEPALIVE_DELAY = 30_000 // ms

/** Disables Nagle: mux frames are small and latency-sensitive, and the session batches writes itself. */
export function setNoDelay (socket: net.Socket): void {
  socket.setNoDelay(true)
}

/** Turns on TCP keepalive so the kernel notices a dead peer even when the application is idle. */
export function setKeepAlive (socket: net.Socket, initialDelay = DEFAULT_KEEPALIVE_DELAY): void {
  socket.setKeepAlive(true, initialDelay)
}

/** `host:port`, with IPv6 literals bracketed (`[::1]:7835`). */
export function formatHostPort (host: string, port: number): string {
  return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`
}

/** Human text for a timeout in ms: "timed out after 10 s", "timed out after 0.3 s". */
export function timeoutReason (timeoutMs: number): string {
  return `timed out after ${Number((timeoutMs / 1000).toFixed(3))} s`
}

/** One line saying why a dial failed, from a Node system error. */
export function unreachableReason (err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code
  switch (code) {
    case 'ECONNREFUSED': return 'connection refused'
    case 'ENOTFOUND': return 'host not found'
    case 'EAI_AGAIN': return 'DNS lookup failed (temporary failure)'
    case 'EHOSTUNREACH': return 'host unreachable'
    case 'ENETUNREACH': return 'network unreachable'
    case 'ETIMEDOUT': return 'connection timed out'
    case 'ECONNRESET': return 'connection reset by peer'
    case 'EPIPE': return 'connection closed by peer'
    case 'EADDRNOTAVAIL': return 'address not available'
    case 'EACCES':
    case 'EPERM': return 'permission denied'
  }
  const message = err instanceof Error ? err.message : String(err)
  // OpenSSL messages span several lines and end in source locations; keep the first line.
  return (message.split('\n')[0] ?? message).trim()
}

export interface ConnectTcpOptions {
  host: string
  port: number
  /** Deadline for the TCP connect, in ms (default 10 000). */
  timeout?: number
  /** TCP keepalive initial delay in ms; 0 leaves keepalive off (default 30 000). */
  keepAlive?: number
}

/**
 * Dials `host:port` with a deadline. Resolves with a connected socket (no-delay, keepalive,
 * no listeners left behind); rejects with RelayUnreachableError ("connection refused",
 * "timed out after 10 s", …).
 */
export function connectTcp (opts: ConnectTcpOptions): Promise<net.Socket> {
  const address = formatHostPort(opts.host, opts.port)
  const timeout = opts.timeout ?? DEFAULT_CONNECT_TIMEOUT
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: opts.host, port: opts.port })
    const timer = setTimeout(() => fail(undefined, timeoutReason(timeout)), timeout)
    const cleanup = (): void => {
      clearTimeout(timer)
      socket.off('connect', onConnect)
      socket.off('error', onError)
    }
    const fail = (cause: unknown, reason = unreachableReason(cause)): void => {
      cleanup()
      socket.on('error', () => {}) // nothing more to report; keep a late error from crashing
      socket.destroy()
      reject(new RelayUnreachableError(address, reason, cause === undefined ? undefined : { cause }))
    }
    const onError = (err: Error): void => fail(err)
    const onConnect = (): void => {
      cleanup()
      setNoDelay(socket)
      if (opts.keepAlive !== 0) setKeepAlive(socket, opts.keepAlive)
      resolve(socket)
    }
    socket.once('connect', onConnect)
    socket.once('error', onError)
  })
}
