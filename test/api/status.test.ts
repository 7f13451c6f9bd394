// The API's statuses: API_STATUS (packages/mport-relay/src/api/status.ts) and PROTOCOL.md's
// "the API answers NNN" must agree, and toHttpError hides what it does not map.
import { readFile } from 'node:fs/promises'
import t from 'tap'
// The errors come from 'mport/errors', as the API's do, so both sides see the same classes.
import * as errors from 'mport/errors'
import { ErrorCodes, MportError, type ErrorCode } from 'mport/errors'
import { API_STATUS, statusFor, toHttpError } from '../../packages/mport-relay/src/api/index.js'

const protocol = await readFile(new URL('../../PROTOCOL.md', import.meta.url), 'utf8')
const table = protocol.slice(protocol.indexOf('\n## Error codes\n'))
/** `the API answers NNN` per code, from the table's Meaning column. */
const documented = new Map<string, number>()
for (const line of table.split('\n')) {
  const m = /^\| `(MPORT_ERR_[A-Z_]+)` \|.*\bthe API answers (\d{3})\b/.exec(line)
  if (m !== null) documented.set(m[1]!, Number(m[2]))
}

t.test('API_STATUS and the table say the same', async t => {
  const mapped = Object.entries(API_STATUS)
  t.ok(mapped.length >= 10, `${mapped.length} codes have a status`)
  for (const [code, status] of mapped) {
    t.ok((ErrorCodes as readonly string[]).includes(code), `${code} is a code`)
    t.equal(documented.get(code), status, `PROTOCOL.md says the API answers ${status} for ${code}`)
  }
  for (const [code, status] of documented) t.equal(API_STATUS[code as ErrorCode], status, `API_STATUS has ${code}: ${status}, as PROTOCOL.md says`)
})

t.test('statuses of the store and API errors', async t => {
  t.equal(statusFor(new errors.InvalidInputError('bad')), 400)
  t.equal(statusFor(new errors.NotFoundError('user', 'usr_nope')), 404)
  t.equal(statusFor(new errors.UserExistsError('alice')), 409)
  t.equal(statusFor(new errors.ReservationTakenError('subdomain', 'shop')), 409)
  t.equal(statusFor(new errors.QuotaExceededError('maxTunnels', 3)), 429)
  t.equal(statusFor(new errors.RateLimitedError('slow down', 1000)), 429)
  t.equal(statusFor(new errors.UnauthenticatedError()), 401)
  t.equal(statusFor(new errors.ForbiddenError()), 403)
  t.equal(statusFor(new errors.UnavailableError('live tunnels')), 503)
  t.equal(statusFor(new errors.InternalError()), 500)
  t.equal(statusFor(new errors.DatabaseError('disk full')), 500, 'a database failure is a 500')
  t.equal(statusFor(new Error('boom')), 500, 'anything else is a 500')
})

t.test('toHttpError keeps mapped codes and hides the rest', async t => {
  t.same(toHttpError(new errors.UserExistsError('alice')), { status: 409, code: 'MPORT_ERR_USER_EXISTS', message: 'a user named "alice" already exists' })
  t.same(toHttpError(new errors.InternalError('the relay is shutting down')), { status: 500, code: 'MPORT_ERR_INTERNAL', message: 'the relay is shutting down' })
  const hidden = { status: 500, code: 'MPORT_ERR_INTERNAL', message: 'internal error' }
  t.same(toHttpError(new errors.DatabaseError('password authentication failed for user "mport"')), hidden, 'database details stay in the log')
  t.same(toHttpError(new errors.SchemaTooNewError(9, 3)), hidden)
  t.same(toHttpError(new errors.SessionClosedError()), hidden, 'an unmapped library error is internal')
  t.same(toHttpError(new Error('boom')), hidden)
  t.same(toHttpError(Object.assign(new Error('body must have required property name'), { validation: [] })),
    { status: 400, code: 'MPORT_ERR_INVALID_INPUT', message: 'invalid request: body must have required property name' })
  t.same(toHttpError(Object.assign(new Error('Unsupported Media Type'), { statusCode: 415 })), { status: 415, code: 'MPORT_ERR_INVALID_INPUT', message: 'Unsupported Media Type' })
  t.same(toHttpError(Object.assign(new Error('Not Found'), { statusCode: 404 })), { status: 404, code: 'MPORT_ERR_NOT_FOUND', message: 'Not Found' })
  t.ok(new errors.InternalError() instanceof MportError)
})
