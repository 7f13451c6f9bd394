/**
 * JSON schemas of the REST API: request validation and response serialisation (fields not in
 * a response schema are never sent), and the source of the OpenAPI document.
 */

/** Name of the bearer security scheme in the OpenAPI document. */
export const BEARER = 'bearer'
/** Name of the dashboard's session-cookie security scheme. */
export const COOKIE = 'cookie'
/** `security` of routes that need a caller: a Bearer token, or the dashboard's cookie (state-changing requests then need X-CSRF-Token). */
export const secured: Array<Record<string, string[]>> = [{ [BEARER]: [] }, { [COOKIE]: [] }]

export const errorSchema = {
  $id: 'Error',
  type: 'object',
  description: 'Every 4xx and 5xx answer.',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string', description: 'Stable MPORT_ERR_* code (PROTOCOL.md, Error codes).', example: 'MPORT_ERR_INVALID_INPUT' },
        message: { type: 'string' },
      },
    },
  },
} as const

const time = { type: 'integer', description: 'ms since the Unix epoch' } as const
const nullableTime = { type: ['integer', 'null'], description: 'ms since the Unix epoch, or null' } as const

export const userSchema = {
  $id: 'User',
  type: 'object',
  required: ['id', 'name', 'role', 'createdAt', 'disabled'],
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    role: { type: 'string', enum: ['admin', 'user'] },
    createdAt: time,
    disabled: { type: 'boolean' },
  },
} as const

export const tokenSchema = {
  $id: 'Token',
  type: 'object',
  required: ['id', 'name', 'tokenId', 'createdAt', 'lastUsedAt', 'revokedAt', 'expiresAt'],
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    tokenId: { type: 'string', description: 'Public token id (what the tunnel handshake sends).' },
    createdAt: time,
    lastUsedAt: nullableTime,
    revokedAt: nullableTime,
    expiresAt: { ...nullableTime, description: 'when the token stops working (ms since the Unix epoch); null: never' },
  },
} as const

export const reservationSchema = {
  $id: 'Reservation',
  type: 'object',
  required: ['id', 'kind', 'value', 'createdAt'],
  properties: {
    id: { type: 'string' },
    userId: { type: 'string' },
    kind: { type: 'string', enum: ['subdomain', 'port'] },
    value: { type: 'string' },
    createdAt: time,
  },
} as const

const limitValue = { type: ['integer', 'null'], minimum: 0, description: 'null: unlimited' } as const
const limitProps = {
  maxTunnels: limitValue,
  maxConnections: { ...limitValue, description: 'concurrent visitor connections; null: unlimited' },
  monthlyBytes: { ...limitValue, description: 'bytes in + out per UTC month; null: unlimited' },
  bandwidthBytesPerSecond: { ...limitValue, description: 'bytes/s; null: unlimited' },
  connectionsPerMinute: { ...limitValue, description: 'new visitor connections per minute; null: unlimited' },
} as const

export const limitsSchema = {
  $id: 'Limits',
  type: 'object',
  required: Object.keys(limitProps),
  properties: limitProps,
} as const

export const limitOverridesSchema = {
  $id: 'LimitOverrides',
  type: 'object',
  additionalProperties: false,
  description: 'A number overrides the relay default; null removes the override; absent keys are unchanged.',
  properties: limitProps,
} as const

export const tunnelSchema = {
  $id: 'Tunnel',
  type: 'object',
  required: ['id', 'name', 'userId'],
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    userId: { type: 'string' },
    userName: { type: 'string' },
    port: { type: 'integer' },
    url: { type: 'string' },
    online: { type: 'boolean' },
    connections: { type: 'integer' },
    bytesIn: { type: 'integer', description: 'visitor → service bytes so far, open connections included' },
    bytesOut: { type: 'integer', description: 'service → visitor bytes so far, open connections included' },
    kind: { type: 'string', enum: ['tcp', 'http', 'tls'] },
    clientAddress: { type: 'string', description: 'the client machine\'s address, while it is connected' },
    clientAgent: { type: 'string', description: 'the client\'s software and version (mport-connect/0.1.0), while it is connected' },
    since: { type: 'integer', description: 'when the tunnel came up (ms since the Unix epoch)' },
    group: {
      type: 'object',
      description: 'A load-balancing group member: the group, with every member (this tunnel is one of them).',
      required: ['name', 'policy', 'keyed', 'members'],
      properties: {
        name: { type: 'string' },
        policy: { type: 'string', enum: ['roundrobin', 'leastconn'] },
        keyed: { type: 'boolean', description: 'Other users\' tunnels may join with the group key (never shown).' },
        members: {
          type: 'array',
          items: {
            type: 'object',
            required: ['client', 'state', 'connections'],
            properties: {
              client: { type: 'string', description: 'The member\'s lease id.' },
              session: { type: 'string', description: 'The client connection holding it now; absent while the client is away.' },
              remoteAddress: { type: 'string' },
              agent: { type: 'string', description: 'The client\'s software and version.' },
              state: { type: 'string', enum: ['ready', 'draining', 'unhealthy', 'gone'], description: 'ready takes new visitors; the others get none.' },
              connections: { type: 'integer', description: 'Visitor connections open to this member.' },
              healthDetail: { type: 'string', description: 'Why its health check failed, while unhealthy.' },
            },
          },
        },
      },
    },
    lastSeen: { type: 'integer', description: 'when the tunnel\'s client was last connected (ms since the Unix epoch): now while it is, else when it left' },
    filter: { type: 'string', description: 'the client\'s visitor filter in one line (allow 10.0.0.0/8, or open to every address)' },
    restricted: { type: 'boolean', description: 'the client gave an allow list, so grants matter' },
    grants: { type: 'array', items: { $ref: 'Grant#' } },
  },
} as const

export const grantSchema = {
  $id: 'Grant',
  type: 'object',
  description: 'An address let through a tunnel\'s allow list until a time.',
  required: ['address', 'until'],
  properties: { address: { type: 'string' }, until: time },
} as const

export const usageBucketSchema = {
  $id: 'UsageBucket',
  type: 'object',
  required: ['start', 'userId', 'tunnel', 'bytesIn', 'bytesOut', 'connections', 'activeSeconds'],
  properties: {
    start: time,
    userId: { type: 'string' },
    tunnel: { type: 'string' },
    bytesIn: { type: 'integer' },
    bytesOut: { type: 'integer' },
    connections: { type: 'integer' },
    activeSeconds: { type: 'integer' },
  },
} as const

export const auditEntrySchema = {
  $id: 'AuditEntry',
  type: 'object',
  required: ['id', 'at', 'actorId', 'actorName', 'action', 'target', 'address', 'details'],
  properties: {
    id: { type: 'integer' },
    at: time,
    actorId: { type: ['string', 'null'] },
    actorName: { type: ['string', 'null'] },
    action: { type: 'string' },
    target: { type: ['string', 'null'] },
    address: { type: ['string', 'null'] },
    details: { type: ['object', 'null'], additionalProperties: true },
  },
} as const

export const sharedSchemas = [errorSchema, userSchema, tokenSchema, reservationSchema, limitsSchema, limitOverridesSchema, grantSchema, tunnelSchema, usageBucketSchema, auditEntrySchema]

export const ref = (id: string): { $ref: string } => ({ $ref: `${id}#` })

/** Standard error responses for a route, by status. */
export function errors (...statuses: number[]): Record<number, { $ref: string }> {
  return Object.fromEntries(statuses.map(s => [s, ref('Error')]))
}

export const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 128 } },
} as const
