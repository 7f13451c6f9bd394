/**
 * The REST API as the page calls it: the session cookie rides along (same origin), and every
 * state-changing call carries the session's CSRF token. Errors keep the API's stable code.
 */

export interface User { id: string, name: string, role: 'admin' | 'user', createdAt: number, disabled: boolean }
export interface Tunnel {
  id: string, name: string, userId: string, userName?: string, port?: number, url?: string, online?: boolean,
  connections?: number, bytesIn?: number, bytesOut?: number, kind?: 'tcp' | 'http' | 'tls', clientAddress?: string, clientAgent?: string, since?: number,
  group?: TunnelGroup,
  lastSeen?: number, filter?: string, restricted?: boolean, grants?: Array<{ address: string, until: number }>
}
/** A load-balancing group a tunnel is a member of (GET /v1/tunnels `group`). */
export interface TunnelGroup {
  name: string, policy: 'roundrobin' | 'leastconn', keyed: boolean
  members: Array<{ client: string, session?: string, remoteAddress?: string, agent?: string, state: 'ready' | 'draining' | 'unhealthy' | 'gone', connections: number, healthDetail?: string }>
}
/** One recent request of an http tunnel (GET /v1/tunnels/:id/requests): metadata only. */
export interface RecentRequest { at: number, method: string, path: string, status: number, durationMs: number, requestBytes: number, responseBytes: number, address: string }
export interface Token { id: string, name: string, tokenId: string, createdAt: number, lastUsedAt: number | null, revokedAt: number | null, expiresAt: number | null }
export interface Limits { maxTunnels: number | null, maxConnections: number | null, monthlyBytes: number | null, bandwidthBytesPerSecond: number | null, connectionsPerMinute: number | null }
export interface UsageBucket { start: number, userId: string, tunnel: string, bytesIn: number, bytesOut: number, connections: number, activeSeconds: number }
export interface Usage { granularity: string, from: number, to: number, buckets: UsageBucket[], totals: { bytesIn: number, bytesOut: number, connections: number, activeSeconds: number } }
export interface Reservation { id: string, kind: 'subdomain' | 'port', value: string, createdAt: number }
export interface AuditEntry { id: number, at: number, actorId: string | null, actorName: string | null, action: string, target: string | null, address: string | null, details: Record<string, unknown> | null }
export interface SessionState { user: User, csrf: string, signup: boolean }

export class ApiError extends Error {
  constructor (readonly status: number, readonly code: string, message: string) { super(message) }
}

let csrf = ''
export function setCsrf (token: string): void { csrf = token }

export async function call<T> (method: string, url: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' }
  if (body !== undefined) headers['content-type'] = 'application/json'
  if (method !== 'GET' && csrf !== '') headers['x-csrf-token'] = csrf
  const r = await fetch(url, { method, headers, credentials: 'same-origin', ...(body !== undefined ? { body: JSON.stringify(body) } : {}) })
  if (r.status === 204) return undefined as T
  const data = await r.json().catch(() => ({})) as { error?: { code: string, message: string } }
  if (!r.ok) throw new ApiError(r.status, data.error?.code ?? 'MPORT_ERR_INTERNAL', data.error?.message ?? `HTTP ${r.status}`)
  return data as T
}

export const get = <T>(url: string): Promise<T> => call<T>('GET', url)
export interface RecentVisitor { at: number, address: string, bytesIn: number, bytesOut: number, refused?: string }
