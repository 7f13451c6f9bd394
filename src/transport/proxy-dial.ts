/**
 * A TCP connection to the relay, straight or through a proxy (HTTP CONNECT or SOCKS5), under
 * one deadline: the socket it resolves with carries bytes to `host:port` either way.
 */
import type net from 'node:net'
import { RelayUnreachableError } from '../errors.js'
import { httpConnect } from './http-connect.js'
import type { ProxyConfig } from './proxy-url.js'
import { socks5Connect } from './socks5.js'
import { connectTcp, formatHostPort, timeoutReason, unreachableReason } from './tcp.js'

/** Options of {@link dialThrough}. */
export interface DialThroughOptions {
  host: string
  port: number
  /** The proxy to go through; undefined: straight to `host:port`. */
  proxy: ProxyConfig | undefined
  /** Deadline for the connection and the proxy's handshake, in ms. */
  timeout: number
}

/** Connects to `host:port` (through `proxy` when given); rejects with a typed error naming the proxy, never its credentials. */
export async function dialThrough (opts: DialThroughOptions): Promise<net.Socket> {
  const proxy = opts.proxy
  if (proxy === undefined) return await connectTcp({ host: opts.host, port: opts.port, timeout: opts.timeout })
  const started = Date.now()
  let socket: net.Socket
  try {
    socket = await connectTcp({ host: proxy.host, port: proxy.port, timeout: opts.timeout })
  } catch (err) {
    const cause = (err as Error).cause
    throw new RelayUnreachableError(formatHostPort(opts.host, opts.port), `proxy ${proxy.label} unreachable: ${cause === undefined ? timeoutReason(opts.timeout) : unreachableReason(cause)}`, { cause: err })
  }
  return await withDeadline(socket, opts.timeout - (Date.now() - started), formatHostPort(opts.host, opts.port), proxy,
    proxy.kind === 'http' ? httpConnect(socket, proxy, opts.host, opts.port) : socks5Connect(socket, proxy, opts.host, opts.port))
}

/** The proxy's handshake, or the socket destroyed and a timeout error when the deadline passes first. */
async function withDeadline<T> (socket: net.Socket, ms: number, target: string, proxy: ProxyConfig, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new RelayUnreachableError(target, `through proxy ${proxy.label}: ${timeoutReason(Math.max(ms, 0))}`)), Math.max(ms, 1))
  })
  try {
    return await Promise.race([work, timeout])
  } catch (err) {
    socket.destroy()
    work.catch(() => {})
    throw err
  } finally {
    clearTimeout(timer)
  }
}
