/**
 * Errors a user can act on (issue 14), through the real bins: each case asserts the exit code
 * and the one line on stderr. Bad flags and arguments (exit 2) name the flag or the argument,
 * show what was typed instead of NaN and suggest the flag meant; a port in use names the flag
 * that chose it; a changed relay certificate says where the remembered one lives and offers
 * `mport-connect forget`, which works; the relay's log lines carry the time; refused visitors
 * (IP filter, plan limit) are logged on the relay and the client once per tunnel and reason
 * per interval.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import t, { type Test } from 'tap'
import { cleanup, relayArgs, runBin, spawnBin, tmpDir } from './helpers/spawn.js'
import { startEcho } from './helpers/tunnel.js'

t.teardown(cleanup)

const STACK_LINE = /^ {4}at /m
const ISO = '\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z'

/** Exactly one non-empty line on stderr, equal to (or matching) `want`, and no stack trace. */
function oneLine (tt: Test, stderr: string, want: RegExp | string, what: string): void {
  const lines = stderr.split('\n').filter(l => l.trim() !== '')
  tt.equal(lines.length, 1, `${what}: exactly one line on stderr, got ${JSON.stringify(stderr)}`)
  if (typeof want === 'string') tt.equal(lines[0], want, `${what}: the line`)
  else tt.match(lines[0] ?? '', want, `${what}: the line`)
  tt.notMatch(stderr, STACK_LINE, `${what}: no stack trace`)
}

/** A listener holding a loopback port for the test. */
async function holdPort (t: Test): Promise<number> {
  const server = net.createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => server.close(() => resolve())))
  return (server.address() as net.AddressInfo).port
}

t.test('bad flags and arguments: exit 2, one line that names the flag or argument', async t => {
  const data = path.join(tmpDir(), 'data')
  const conn = ['--relay', '127.0.0.1:1', '--token', 'mpt_never-printed']
  const R = (s: string): string => `mport-relay: ${s} (see mport-relay --help)`
  const C = (s: string): string => `mport-connect: ${s} (see mport-connect --help)`
  const cases: Array<{ bin: 'mport-relay' | 'mport-connect', args: string[], line: string | RegExp }> = [
    { bin: 'mport-relay', args: relayArgs(data, ['--port', 'abc']), line: R('--port "abc" is not a port number (0-65535)') },
    { bin: 'mport-relay', args: relayArgs(data, ['--api-port', '7x']), line: R('--api-port "7x" is not a port number (0-65535)') },
    { bin: 'mport-relay', args: relayArgs(data, ['--drain-timeout', 'soon']), line: R('--drain-timeout "soon" is not a number of seconds') },
    { bin: 'mport-relay', args: relayArgs(data, ['--prot', '5']), line: R('Unknown argument: prot; did you mean --port?') },
    { bin: 'mport-relay', args: relayArgs(data, ['--lease-grase', '5']), line: R('Unknown argument: lease-grase; did you mean --lease-grace?') },
    { bin: 'mport-connect', args: ['5555', '--relay', 'host:abc', '--token', 'x'], line: C('--relay "host:abc": "abc" is not a port number (1-65535) [MPORT_ERR_INVALID_CONFIG]') },
    { bin: 'mport-connect', args: ['5555:abc', ...conn], line: C('argument "5555:abc": "abc" is not a port number (1-65535) [MPORT_ERR_INVALID_CONFIG]') },
    { bin: 'mport-connect', args: ['5555', ...conn, '--relya', 'x'], line: C('Unknown argument: relya; did you mean --relay?') },
    { bin: 'mport-connect', args: ['5555', ...conn, '--verbos'], line: C('Unknown argument: verbos; did you mean --verbose?') },
    { bin: 'mport-connect', args: ['5555', ...conn, '--proxy-protocol', 'abc'], line: C('Invalid values: Argument: proxy-protocol, Given: "abc", Choices: 1, 2') },
    { bin: 'mport-connect', args: ['5555', ...conn, '--fingerprint', 'md5:ab'], line: /^mport-connect: --fingerprint: unsupported digest "md5" \(only sha256.*\) \[MPORT_ERR_INVALID_CONFIG\] \(see mport-connect --help\)$/ },
    { bin: 'mport-connect', args: ['5555', ...conn, '--allow-ip', '10.0.0.0/99'], line: /^mport-connect: --allow-ip\/--deny-ip: "10\.0\.0\.0\/99": prefix length 99 exceeds .* \[MPORT_ERR_INVALID_CONFIG\] \(see mport-connect --help\)$/ },
    { bin: 'mport-connect', args: ['forget', 'host:abc'], line: 'mport-connect: relay "host:abc": "abc" is not a port number (1-65535) (see mport-connect --help)' },
  ]
  for (const c of cases) {
    const r = await runBin(c.bin, c.args)
    const what = `${c.bin} ${c.args.filter(a => !a.includes('/tmp/')).join(' ')}`
    t.equal(r.code, 2, `${what}: exit 2`)
    oneLine(t, r.stderr, c.line, what)
    t.equal(r.stdout, '', `${what}: nothing on stdout`)
  }
})

t.test('a port in use: the flag that chose it and what to do, exit 1', async t => {
  const taken = await holdPort(t)
  const control = await runBin('mport-relay', relayArgs(path.join(tmpDir(), 'data')).map(a => a === '0' ? String(taken) : a))
  t.equal(control.code, 1, '--port in use: exit 1')
  oneLine(t, control.stderr, new RegExp(`^${ISO} mport-relay: port ${taken} \\(--port\\) is already in use on 127\\.0\\.0\\.1: stop the program using it \\(ss -ltnp 'sport = :${taken}' shows it\\) or choose another port with --port \\[EADDRINUSE\\]$`), '--port in use')
  const api = await runBin('mport-relay', relayArgs(path.join(tmpDir(), 'data'), ['--api-port', String(taken)]))
  t.equal(api.code, 1, '--api-port in use: exit 1')
  oneLine(t, api.stderr, new RegExp(`^${ISO} mport-relay: port ${taken} \\(--api-port\\) is already in use on 127\\.0\\.0\\.1: .* choose another port with --api-port \\[EADDRINUSE\\]$`), '--api-port in use')
})

t.test('a changed relay certificate: where the remembered one is, and mport-connect forget', async t => {
  const relay = spawnBin('mport-relay', relayArgs(path.join(tmpDir(), 'data')))
  const listening = await relay.waitLine(/mport relay listening on /, 'the listening line')
  t.match(listening, new RegExp(`^${ISO} mport relay listening on 127\\.0\\.0\\.1:\\d+ `), 'the relay\'s log lines start with the ISO time')
  const port = Number(/listening on 127\.0\.0\.1:(\d+) /.exec(listening)?.[1])
  const token = readFileSync(path.join(relay.args[relay.args.indexOf('--data-dir') + 1]!, 'token'), 'utf8').trim()
  const echo = await startEcho()
  t.teardown(() => echo.close())

  // The user's store remembers another certificate for this address (the relay's was replaced).
  const config = path.join(tmpDir('mport-cfg-'), 'config')
  const known = path.join(config, 'mport', 'known_relays.json')
  mkdirSync(path.dirname(known), { recursive: true })
  const old = 'sha256:' + 'ab'.repeat(32)
  writeFileSync(known, JSON.stringify({ relays: { [`127.0.0.1:${port}`]: { fingerprint: old, firstSeen: '2026-01-01T00:00:00.000Z' } } }))
  const env = { XDG_CONFIG_HOME: config }
  const args = [String(echo.port), '--relay', `127.0.0.1:${port}`, '--token', token, '--no-lease-file']
  const refused = await runBin('mport-connect', args, { env })
  t.equal(refused.code, 1, 'certificate mismatch: exit 1')
  oneLine(t, refused.stderr, new RegExp(`^mport-connect: relay certificate fingerprint sha256:[0-9a-f]{64} does not match the expected ${old}; the remembered fingerprint is in ${known.replace(/[.]/g, '\\.')}: if the relay's certificate was changed on purpose, run mport-connect forget 127\\.0\\.0\\.1:${port}; if not, someone may be intercepting the connection \\[MPORT_ERR_CERT_MISMATCH\\]$`), 'certificate mismatch')
  t.notOk(refused.stdout.includes(token) || refused.stderr.includes(token), 'the token is not printed')

  const forget = await runBin('mport-connect', ['forget', `127.0.0.1:${port}`], { env })
  t.equal(forget.code, 0, 'forget: exit 0')
  t.equal(forget.stderr, '', 'forget: nothing on stderr')
  t.equal(forget.stdout, `forgot the certificate of 127.0.0.1:${port} (${old}, first seen 2026-01-01T00:00:00.000Z) from ${known}; the next connection trusts the certificate it is shown, or pin it with --fingerprint\n`)
  t.same(JSON.parse(readFileSync(known, 'utf8')), { relays: {} }, 'the entry is gone from the store')
  const again = await runBin('mport-connect', ['forget', `127.0.0.1:${port}`], { env })
  t.equal(again.code, 0, 'forget again: exit 0')
  t.equal(again.stdout, `127.0.0.1:${port} is not in ${known}: nothing to forget\n`)

  const client = spawnBin('mport-connect', args, { env })
  t.teardown(() => client.kill())
  t.match(await client.waitLine(/^connected to /, 'the connected line'), /first use: trusting certificate sha256:/, 'after forget: trusted on first use again')
})

t.test('visitors refused by an IP filter: one relay line per tunnel and reason per interval', async t => {
  const relay = spawnBin('mport-relay', relayArgs(path.join(tmpDir(), 'data')))
  const listening = await relay.waitLine(/mport relay listening on /, 'the listening line')
  const port = Number(/listening on 127\.0\.0\.1:(\d+) /.exec(listening)?.[1])
  const token = readFileSync(path.join(relay.args[relay.args.indexOf('--data-dir') + 1]!, 'token'), 'utf8').trim()
  const echo = await startEcho()
  t.teardown(() => echo.close())
  const client = spawnBin('mport-connect', [`web=${echo.port}`, '--relay', `127.0.0.1:${port}`, '--token', token, '--allow-ip', '10.0.0.0/8', '--no-lease-file'])
  t.teardown(() => client.kill())
  const publicPort = Number(/^tcp:\/\/127\.0\.0\.1:(\d+) /.exec(await client.waitLine(/^tcp:\/\//, 'the tunnel line'))?.[1])
  const visits = 20
  for (let i = 0; i < visits; i++) {
    await new Promise<void>(resolve => {
      const s = net.connect(publicPort, '127.0.0.1')
      s.on('error', () => resolve()).on('close', () => resolve())
    })
  }
  const line = await relay.waitLine(/: refused 127\.0\.0\.1/, 'the refused line')
  t.match(line, new RegExp(`^${ISO} web: refused 127\\.0\\.0\\.1: 127\\.0\\.0\\.1 is not allowed by the tunnel's IP filter \\[MPORT_ERR_VISITOR_FILTERED\\]$`), 'the refusal is logged with the time, the tunnel and the code')
  const seen = await client.waitLine(/visitor was refused/, 'the client seeing the refusal')
  t.equal(seen, `tunnel web (127.0.0.1:${echo.port}): a visitor was refused by the relay: 127.0.0.1 is not allowed by the tunnel's IP filter [MPORT_ERR_VISITOR_FILTERED]`, 'the client says which tunnel and why')
  await new Promise(resolve => setTimeout(resolve, 300)) // any further line would be on its way by now
  t.equal(relay.lines().filter(l => l.includes(': refused ')).length, 1, `${visits} refusals within the interval: one relay line`)
  t.equal(client.lines().filter(l => l.includes('refused by the relay')).length, 1, 'and one client line')
})

t.test('visitors over a plan limit: visible on the relay and the client, once per interval', async t => {
  const relay = spawnBin('mport-relay', relayArgs(path.join(tmpDir(), 'data'), ['--api-port', '0', '--open-signup', '--plan-connections', '0']))
  const port = Number(/listening on 127\.0\.0\.1:(\d+) /.exec(await relay.waitLine(/mport relay listening on /, 'the listening line'))?.[1])
  const api = /(http:\/\/127\.0\.0\.1:\d+)\/docs/.exec(await relay.waitLine(/^\s+api:\s+http:/, 'the api line'))?.[1] ?? ''
  const post = async (route: string, body: unknown, bearer?: string): Promise<Record<string, unknown>> => {
    const res = await fetch(api + route, { method: 'POST', headers: { 'content-type': 'application/json', ...(bearer !== undefined ? { authorization: `Bearer ${bearer}` } : {}) }, body: JSON.stringify(body) })
    return await res.json() as Record<string, unknown>
  }
  await post('/v1/signup', { name: 'bob', password: 'plan-limit-password' })
  const session = (await post('/v1/login', { name: 'bob', password: 'plan-limit-password' })).token as string
  const token = (await post('/v1/tokens', { name: 'cli' }, session)).token as string
  t.match(token, /^mpt_/, 'a tunnel token for bob')
  const echo = await startEcho()
  t.teardown(() => echo.close())
  const client = spawnBin('mport-connect', [`app=${echo.port}`, '--relay', `127.0.0.1:${port}`, '--token', token, '--no-lease-file'])
  t.teardown(() => client.kill())
  const publicPort = Number(/^tcp:\/\/127\.0\.0\.1:(\d+) /.exec(await client.waitLine(/^tcp:\/\//, 'the tunnel line'))?.[1])
  for (let i = 0; i < 5; i++) {
    await new Promise<void>(resolve => {
      const s = net.connect(publicPort, '127.0.0.1')
      s.on('error', () => resolve()).on('close', () => resolve())
    })
  }
  const line = await relay.waitLine(/app: refused 127\.0\.0\.1/, 'the refused line')
  t.match(line, new RegExp(`^${ISO} app: refused 127\\.0\\.0\\.1: your plan allows 0 concurrent connections \\[MPORT_ERR_QUOTA_EXCEEDED\\]$`), 'the relay names the plan limit')
  const seen = await client.waitLine(/refused by the relay/, 'the client line')
  t.equal(seen, `tunnel app (127.0.0.1:${echo.port}): a visitor was refused by the relay: your plan allows 0 concurrent connections [MPORT_ERR_QUOTA_EXCEEDED]`, 'the client names it too')
  t.equal(relay.lines().filter(l => l.includes(': refused ')).length, 1, 'one relay line for 5 refusals')
  t.notOk(client.output.includes(token), 'the token is not printed')
})
