/**
 * The terminal status screen in a real terminal: the real relay bin (domain, shared HTTP
 * port) and `mport-connect http <port>` running in a tmux pane, read back with capture-pane.
 * The screen shows the session, the tunnel's public → local address, the inspector's address
 * and the requests undici sends through the relay; Ctrl+C (send-keys) leaves the alternate
 * screen with the last events printed. The same bin piped (not a TTY) prints plain lines and
 * no escape sequences. Without tmux the test skips locally and fails under CI.
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { request } from 'undici'
import { cleanEnv, cleanup, relayArgs, REPO_ROOT, spawnBin, tmpDir } from '../helpers/spawn.js'
import { waitFor } from '../helpers/wait.js'
import { startApp } from './fixtures.js'

const run = promisify(execFile)
const DOMAIN = 'tunnels.test'
const missing = await run('tmux', ['-V']).then(() => undefined, () => 'tmux is missing (apt-get install -y tmux)')

t.teardown(cleanup)

async function startRelay (): Promise<{ port: number, httpPort: number, fingerprint: string, token: string }> {
  const dataDir = path.join(tmpDir(), 'data')
  const relay = spawnBin('mport-relay', relayArgs(dataDir, ['--json', '--domain', DOMAIN, '--http-port', '0']))
  const listening = await relay.waitEvent('listening')
  return { port: listening.port as number, httpPort: listening.httpPort as number, fingerprint: listening.fingerprint as string, token: readFileSync(path.join(dataDir, 'token'), 'utf8').trim() }
}

async function visit (httpPort: number, p: string, method = 'GET'): Promise<number> {
  const res = await request(`http://127.0.0.1:${httpPort}${p}`, { method: method as 'GET', headers: { host: `shop.${DOMAIN}` }, ...(method === 'POST' ? { body: '{"a":1}' } : {}) })
  await res.body.arrayBuffer()
  return res.statusCode
}

t.test('the status screen in tmux shows the tunnel and the requests', { skip: missing !== undefined && process.env.CI !== 'true' ? missing : false }, async t => {
  if (missing !== undefined) { t.fail(missing); return }
  const relay = await startRelay()
  const app = await startApp()
  t.teardown(() => { app.server.closeAllConnections(); app.server.close() })
  const socket = `mport-status-${randomBytes(4).toString('hex')}`
  const tmux = (...args: string[]): Promise<{ stdout: string }> => run('tmux', ['-L', socket, ...args])
  t.teardown(() => tmux('kill-server').catch(() => {}))
  const env = cleanEnv({ MPORT_TOKEN: relay.token, TERM: 'xterm-256color' })
  // The token goes in the pane's environment, never on a command line.
  const envArgs = Object.entries(env).filter(([k]) => /^(PATH|HOME|XDG_CONFIG_HOME|MPORT_TOKEN|TERM|NO_COLOR)$/.test(k)).flatMap(([k, v]) => ['-e', `${k}=${v}`])
  const cmd = [process.execPath, '--import', 'tsx', 'bin/mport-connect.ts', 'http', String(app.port), '--relay', `127.0.0.1:${relay.port}`,
    '--fingerprint', relay.fingerprint, '--subdomain', 'shop', '--inspect-addr', '127.0.0.1:0', '--no-lease-file'].map(a => `'${a}'`).join(' ')
  await tmux('new-session', '-d', '-s', 'mport', '-x', '150', '-y', '45', '-c', REPO_ROOT, ...envArgs, cmd)
  await tmux('set-option', '-t', 'mport', 'remain-on-exit', 'on')
  const screen = async (): Promise<string> => (await tmux('capture-pane', '-p', '-t', 'mport')).stdout
  let last = ''
  const until = (re: RegExp, what: string): Promise<void> => waitFor(async () => re.test(last = await screen()), { what, timeoutMs: 60_000, intervalMs: 200, diag: () => `the pane:\n${last}` })

  await until(/^Session +online/m, 'the session online on the screen')
  await until(new RegExp(`http://shop\\.${DOMAIN.replace('.', '\\.')}:${relay.httpPort} → 127\\.0\\.0\\.1:${app.port}`, 'm'), 'the tunnel public → local')
  t.match(last, /^Relay +127\.0\.0\.1:\d+$/m, 'the relay')
  t.match(last, /^Inspector +http:\/\/127\.0\.0\.1:\d+\/$/m, 'the inspector\'s address')
  t.match(last, /HTTP requests\nnone yet/, 'no requests yet')

  t.equal(await visit(relay.httpPort, '/hello'), 200)
  t.equal(await visit(relay.httpPort, '/json', 'POST'), 200)
  t.equal(await visit(relay.httpPort, '/missing'), 404)
  await until(/GET +404 +\d+ ms +\/missing/, 'the 404 on the screen')
  t.match(last, /POST +200 +\d+ ms +\/json/)
  t.match(last, /GET +200 +\d+ ms +\/hello/)
  t.comment(`the pane:\n${last}`)
  const order = ['/missing', '/json', '/hello'].map(p => last.indexOf(` ${p}`))
  t.ok(order[0]! < order[1]! && order[1]! < order[2]!, 'newest first')
  await until(/^Latency +[\d.]+ ms$/m, 'the mux ping round trip (a keepalive ping every 5 s)')
  t.notMatch(last, /\x1b/, 'capture-pane shows text, the screen drew in place') // eslint-disable-line no-control-regex -- ESC

  // The page the screen names serves the same requests.
  const inspectUrl = /^Inspector +(\S+)$/m.exec(last)![1]!
  const listed = await (await fetch(`${inspectUrl}api/requests`)).json() as { requests: Array<{ url: string }> }
  t.same(listed.requests.map(r => r.url), ['/missing', '/json', '/hello'])

  await tmux('send-keys', '-t', 'mport', 'C-c')
  await waitFor(async () => (await tmux('display-message', '-p', '-t', 'mport', '#{pane_dead}')).stdout.trim() === '1', { what: 'mport-connect to exit on Ctrl+C', timeoutMs: 30_000, intervalMs: 100 })
  last = await screen()
  t.match(last, /SIGINT: closing/, 'the last events printed after leaving the screen')
  t.notMatch(last, /^Session +online/m, 'the alternate screen is gone')
})

t.test('not a TTY: plain lines, no escape sequences', async t => {
  const relay = await startRelay()
  const app = await startApp()
  t.teardown(() => { app.server.closeAllConnections(); app.server.close() })
  const client = spawnBin('mport-connect', ['http', String(app.port), '--relay', `127.0.0.1:${relay.port}`, '--fingerprint', relay.fingerprint, '--subdomain', 'shop', '--inspect-addr', '127.0.0.1:0', '--no-lease-file'], { env: { MPORT_TOKEN: relay.token } })
  await client.waitLine(/^inspector: http:\/\/127\.0\.0\.1:\d+\/$/m, 'the inspector line')
  await client.waitLine(new RegExp(`^http://shop\\.tunnels\\.test:${relay.httpPort} -> 127\\.0\\.0\\.1:${app.port}$`, 'm'), 'the tunnel line')
  t.equal(await visit(relay.httpPort, '/plain'), 200)
  const inspectUrl = /^inspector: (\S+)$/m.exec(client.stdout)![1]!
  await waitFor(async () => ((await (await fetch(`${inspectUrl}api/requests`)).json()) as { requests: unknown[] }).requests.length === 1, { what: 'the request recorded', timeoutMs: 30_000 })
  t.notMatch(client.output, /\x1b/, 'no escape sequences when piped') // eslint-disable-line no-control-regex -- ESC
  const off = spawnBin('mport-connect', ['http', String(app.port), '--relay', `127.0.0.1:${relay.port}`, '--fingerprint', relay.fingerprint, '--inspect=false', '--no-lease-file'], { env: { MPORT_TOKEN: relay.token } })
  await off.waitLine(/ -> 127\.0\.0\.1:/, 'the second client\'s tunnel line')
  t.notMatch(off.stdout, /inspector:/, '--inspect=false: no inspector')
})
