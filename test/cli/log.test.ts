/**
 * The bins' logger on its own: pino JSON lines with time, level, msg and event; human lines
 * with timestamps; the level filter; errors and warnings on the error stream; and the two
 * redaction layers (secret field names, then every rendered line scrubbed of known secret
 * values and of secret-shaped strings).
 */
import { Writable } from 'node:stream'
import t from 'tap'
import { createLogger, resolveLogFormat, type LoggerOptions } from '../../src/cli/log.js'
import { SecretScrubber } from '../../src/cli/redact.js'
import { UnauthenticatedError } from '../../src/errors.js'

const NOW = new Date('2026-12-02T07:00:00.000Z')

/** A logger over two collecting streams, on a fixed clock. */
function capture (opts: Omit<LoggerOptions, 'out' | 'errOut'>): { out: string[], err: string[], log: ReturnType<typeof createLogger> } {
  const out: string[] = []
  const err: string[] = []
  const sink = (into: string[]): Writable => new Writable({ write (c: Buffer, _e, cb) { into.push(...String(c).split('\n').filter(l => l !== '')); cb() } })
  return { out, err, log: createLogger({ now: () => NOW, ...opts, out: sink(out), errOut: sink(err) }) }
}

t.test('JSON: one object per line with time, level, msg, event and the fields', async t => {
  const { out, err, log } = capture({ format: 'json' })
  log.event('client', 'client c1 connected from 127.0.0.1\nsecond line of a block', { session: 'c1', remoteAddress: '127.0.0.1' })
  log.log('warn', 'quota-exceeded', 'alice: monthly quota used up', { principal: 'alice' })
  log.error(new UnauthenticatedError(), 'mport-relay', 'log in again')
  log.warn(new Error('a client misbehaved'))
  t.equal(out.length, 2, 'two event lines on out')
  t.same(JSON.parse(out[0]!), { level: 'info', time: NOW.toISOString(), event: 'client', session: 'c1', remoteAddress: '127.0.0.1', msg: 'client c1 connected from 127.0.0.1' }, 'the first line of the text is msg')
  t.match(JSON.parse(out[1]!), { level: 'warn', event: 'quota-exceeded', principal: 'alice' })
  t.equal(err.length, 2, 'error and warning on errOut')
  t.match(JSON.parse(err[0]!), { level: 'error', event: 'error', code: 'MPORT_ERR_UNAUTHENTICATED', hint: 'log in again', msg: /authentication required/ })
  t.match(JSON.parse(err[1]!), { level: 'warn', event: 'warning', message: 'a client misbehaved', msg: 'a client misbehaved' })
})

t.test('text: the human lines, stamped when asked; errors as one line', async t => {
  const { out, err, log } = capture({ format: 'text', timestamps: true })
  log.event('listening', 'mport relay listening\n  token: (given)', {})
  log.error(new UnauthenticatedError(), 'mport-connect', 'log in again')
  log.warn(new Error('careful'))
  t.same(out, [`${NOW.toISOString()} mport relay listening`, '  token: (given)'], 'the first line of a block carries the time')
  t.match(err[0], /^2026-12-02T07:00:00\.000Z mport-connect: authentication required.*; log in again \[MPORT_ERR_UNAUTHENTICATED\]$/)
  t.equal(err[1], `${NOW.toISOString()} warning: careful`)
})

t.test('levels: lines below the level are dropped; enabled() says so', async t => {
  for (const [level, written] of [['error', ['e']], ['warn', ['e', 'w']], ['info', ['e', 'w', 'i']], ['debug', ['e', 'w', 'i', 'd']]] as const) {
    const { out, err, log } = capture({ format: 'json', level })
    log.log('debug', 'd', 'd')
    log.event('i', 'i')
    log.log('warn', 'w', 'w')
    log.error(new Error('e'))
    const events = [...err, ...out].map(l => (JSON.parse(l) as { event: string, msg: string }).msg)
    t.same(events.sort(), [...written].sort(), `${level}: ${written.join(', ')}`)
    t.equal(log.enabled('debug'), level === 'debug', `${level}: enabled('debug')`)
  }
})

t.test('auto: text on a terminal, JSON otherwise', async t => {
  t.equal(resolveLogFormat('auto', Object.assign(new Writable(), { isTTY: true })), 'text')
  t.equal(resolveLogFormat('auto', new Writable()), 'json')
  t.equal(resolveLogFormat('text', new Writable()), 'text')
  t.equal(resolveLogFormat('json', Object.assign(new Writable(), { isTTY: true })), 'json')
})

t.test('secret fields are *** wherever they sit, one level down too', async t => {
  const { out, log } = capture({ format: 'json' })
  log.event('x', 'x', { token: 'plain-value-1', password: 'plain-value-2', headers: { authorization: 'plain-value-3', cookie: 'plain-value-4' }, lease: { id: 'L1', secret: 'plain-value-5' }, basicAuth: 'u:plain-value-6' })
  const o = JSON.parse(out[0]!) as Record<string, unknown>
  t.same(o, { level: 'info', time: NOW.toISOString(), event: 'x', token: '***', password: '***', headers: { authorization: '***', cookie: '***' }, lease: { id: 'L1', secret: '***' }, basicAuth: '***', msg: 'x' })
  t.notMatch(out[0]!, /plain-value/, 'no value left')
})

t.test('every rendered line is scrubbed: known values and secret shapes, in messages and fields, JSON and text', async t => {
  const key = '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----'
  const known = 'Operator-Given-Token-Without-Prefix'
  for (const format of ['json', 'text'] as const) {
    const { out, err, log } = capture({ format, secrets: [known] })
    log.secret('correct horse battery')
    log.event('x', `given ${known} and mpt_AbC123-_x and mps_sessionTOKEN9 in a message`, { note: `correct horse battery ${known}` })
    log.event('x', 'database postgres://mport:s3cr3t-pw@127.0.0.1:5432/db and Authorization: Basic YWxpY2U6cGFzc3dvcmQ= and Bearer mpt_x', { url: 'https://u:hunter2@example.test/' })
    log.error(new Error(`failed to read ${key} here`))
    log.warn(new Error(`lone marker -----BEGIN RSA PRIVATE KEY-----MIIEvQIBADANBg`))
    const all = [...out, ...err].join('\n')
    for (const leak of [known, 'correct horse battery', 'AbC123', 'sessionTOKEN9', 's3cr3t-pw', 'YWxpY2U6cGFzc3dvcmQ=', 'hunter2', 'MIIEvQIBADANBg', 'BEGIN PRIVATE KEY', 'BEGIN RSA PRIVATE KEY']) {
      t.notOk(all.includes(leak), `${format}: ${leak} is not in the output`)
    }
    t.match(all, /mpt_\*\*\*/, `${format}: a token is still recognisable as one`)
    t.match(all, /postgres:\/\/mport:\*\*\*@127\.0\.0\.1:5432\/db/, `${format}: the URL keeps its user and host`)
    t.match(all, /\[private key\]/, `${format}: a key says what was removed`)
    if (format === 'json') for (const l of [...out, ...err]) t.doesNotThrow(() => JSON.parse(l), `json: still JSON after scrubbing: ${l}`)
  }
})

t.test('the scrubber leaves ordinary lines alone', async t => {
  const s = new SecretScrubber(['abc']) // too short to mask by value
  for (const line of [
    'tcp://127.0.0.1:30001 -> 127.0.0.1:5555',
    'api: http://127.0.0.1:7836/docs',
    'the Authorization header must be "Bearer <token>"',
    'client c1 connected from 127.0.0.1 (abc)',
    'token: mpt_… (in /var/lib/mport/token)',
  ]) t.equal(s.scrub(line), line, line)
})

t.test('a reader that went away does not crash the process', async t => {
  const broken = new Writable({ write (_c, _e, cb) { cb(new Error('EPIPE')) } })
  const log = createLogger({ format: 'json', out: broken, errOut: broken })
  log.event('x', 'x')
  log.error(new Error('y'))
  await new Promise(resolve => setImmediate(resolve))
  t.pass('no uncaught error')
})
