/**
 * A tunnel through an HTTP proxy with CONNECT (RFC 9110 §9.3.6), with Basic proxy
 * authentication when the proxy URL has credentials. The proxy's answer decides the error:
 * 407 (or 401, tinyproxy's answer) → ProxyAuthFailedError, any other status than 2xx →
 * ProxyRefusedError with the status.
 */
import type net from 'node:net'
import { ProxyAuthFailedError, ProxyRefusedError, RelayUnreachableError } from '../errors.js'
import { ProxyReplyReader } from './proxy-reader.js'
import type { ProxyConfig } from './proxy-url.js'
import { formatHostPort, unreachableReason } from './tcp.js'

/** The largest proxy response head read before giving up. */
const MAX_RESPONSE_HEAD = 16 * 1024 // bytes

/** `Proxy-Authorization: Basic …` for a proxy with credentials, else undefined. */
export function proxyAuthorization (proxy: ProxyConfig): string | undefined {
  if (proxy.username === undefined) return undefined
  return `Basic ${Buffer.from(`${proxy.username}:${proxy.password ?? ''}`, 'utf8').toString('base64')}`
}

/**
 * Asks the HTTP proxy on `socket` (connected to it) for a tunnel to `host:port`; resolves with
 * the same socket, now carrying the tunnel, once the proxy answered 2xx.
 */
export async function httpConnect (socket: net.Socket, proxy: ProxyConfig, host: string, port: number): Promise<net.Socket> {
  const authority = formatHostPort(host, port)
  const auth = proxyAuthorization(proxy)
  const reader = new ProxyReplyReader(socket)
  socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${auth !== undefined ? `Proxy-Authorization: ${auth}\r\n` : ''}\r\n`)
  let head: string
  try {
    head = (await reader.readUntil('\r\n\r\n', MAX_RESPONSE_HEAD)).toString('latin1')
  } catch (err) {
    throw new RelayUnreachableError(authority, `through proxy ${proxy.label}: ${unreachableReason(err)}`, { cause: err })
  }
  const statusLine = head.slice(0, head.indexOf('\r\n'))
  const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(statusLine)
  if (m === null) throw new ProxyRefusedError(proxy.label, authority, `not an HTTP answer to CONNECT: ${JSON.stringify(statusLine.slice(0, 80))}`)
  const status = Number(m[1])
  const text = m[2] ?? ''
  // 407 is the standard answer; tinyproxy answers wrong credentials with 401.
  if (status === 407 || status === 401) throw new ProxyAuthFailedError(proxy.label, auth === undefined ? `the proxy asks for credentials (${status}); give them in the proxy URL` : `HTTP ${status} ${text}`.trim())
  if (status < 200 || status > 299) throw new ProxyRefusedError(proxy.label, authority, `HTTP ${status} ${text}`.trim(), { status })
  return reader.release()
}
