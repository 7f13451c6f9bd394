/**
 * mport-connect's transport flags through the real bin: --transport auto falling back to wss
 * when the control port is unreachable, through an authenticating tinyproxy named in
 * MPORT_PROXY (the password never printed), --json naming the transport, the choice
 * remembered in transports.json; the status screen (in a tmux pane) naming the transport in use;
 * and the usage errors of the new flags and config keys.
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { closedPort } from './helpers/ports.js'
import { proxyTestOptions, startTinyproxy } from './helpers/proxies.js'
import { relayWithSharedPorts } from './helpers/shared-ports.js'
import { cleanEnv, cleanup, REPO_ROOT, runBin, spawnBin, tmpDir } from './helpers/spawn.js'
import { certFingerprint, connectTo, roundTrip, startEcho, TOKEN } from './helpers/tunnel.js'
import { waitFor } from './helpers/wait.js'

t.setTimeout(180_000)
t.teardown(cleanup)

t.test('--transport auto through MPORT_PROXY: falls back to wss, says so, never prints the proxy password', proxyTestOptions('tinyproxy'), async t => {
  const relay = await relayWithSharedPorts(t)
  const echo = await startEcho()
  t.teardown(() => echo.close())
  const tp = await startTinyproxy({ basicAuth: { user: 'bob', password: 'hunter2-proxy' }, connectPorts: [relay.httpsAddress!.port] })
  t.teardown(() => tp.stop())
  const blocked = await closedPort()
  const config = path.join(tmpDir(), '.config')
  const client = spawnBin('mport-connect', [String(echo.port), '--relay', `127.0.0.1:${blocked}`, '--token', TOKEN, '--fingerprint', certFingerprint,
    '--transport', 'auto', '--relay-https-port', String(relay.httpsAddress!.port), '--relay-http-port', String(relay.httpAddress!.port), '--json'],
  { env: { MPORT_PROXY: `http://bob:hunter2-proxy@127.0.0.1:${tp.port}`, XDG_CONFIG_HOME: config } })
  t.teardown(() => client.kill())
  const connected = await client.waitEvent('connected', () => true, 60_000)
  t.match(connected, { transport: 'wss', proxy: `http://bob:***@127.0.0.1:${tp.port}`, trust: 'pinned', fingerprint: certFingerprint })
  const tunnel = await client.waitEvent('tunnel', () => true, 60_000)
  t.equal((await roundTrip(await connectTo(tunnel.remotePort as number), Buffer.from('over wss'))).toString(), 'over wss')
  const remembered = JSON.parse(readFileSync(path.join(config, 'mport', 'transports.json'), 'utf8')) as { relays: Record<string, { transport: string }> }
  t.match(remembered.relays[`127.0.0.1:${blocked}`], { transport: 'wss' }, 'transports.json remembers wss for this relay')
  await client.kill()
  t.notMatch(client.output, /hunter2-proxy/, 'the proxy password is in no line')

  t.test('in text the connected line names the transport and the proxy', async t => {
    const text = spawnBin('mport-connect', [String(echo.port), '--relay', `127.0.0.1:${blocked}`, '--token', TOKEN, '--fingerprint', certFingerprint,
      '--transport', 'wss', '--relay-https-port', String(relay.httpsAddress!.port)],
    { env: { MPORT_PROXY: `http://bob:hunter2-proxy@127.0.0.1:${tp.port}` } })
    t.teardown(() => text.kill())
    t.equal(await text.waitLine(/^connected to /, 'the connected line', 60_000), `connected to 127.0.0.1:${blocked} over wss via proxy http://bob:***@127.0.0.1:${tp.port}`)
  })
})

t.test('bad transport settings are usage errors naming the flag or key', async t => {
  const dir = tmpDir()
  const file = path.join(dir, 'client.yaml')
  writeFileSync(file, 'transport: carrier-pigeon\n')
  const portFile = path.join(dir, 'ports.yaml')
  writeFileSync(portFile, 'relay_https_port: 70000\n')
  const base = ['5555', '--relay', '127.0.0.1:1', '--token', 'x']
  const cases: Array<{ args: string[], env?: Record<string, string>, re: RegExp }> = [
    { args: [...base, '--transport', 'smoke'], re: /Invalid values:.*transport.*"smoke".*Choices: "auto", "tls", "wss", "ws"/ },
    { args: [...base, '--proxy', 'ftp://proxy:21'], re: /^mport-connect: --proxy: proxy scheme "ftp" is not supported: use http, socks5 or socks5h \[MPORT_ERR_INVALID_CONFIG\]/ },
    { args: base, env: { MPORT_PROXY: 'gopher://x:secret@h' }, re: /^mport-connect: MPORT_PROXY: proxy scheme "gopher" is not supported/ },
    { args: [...base, '--relay-http-port', '0'], re: /^mport-connect: --relay-http-port: 0 is not a port number \(1-65535\)/ },
    { args: ['--config', file], re: /"transport" in .*client\.yaml must be one of auto, tls, wss, ws, not "carrier-pigeon"/ },
    { args: ['--config', portFile], re: /"relay_https_port" in .*ports\.yaml must be a port number \(1-65535\), not 70000/ },
  ]
  for (const c of cases) {
    const r = await runBin('mport-connect', c.args, c.env !== undefined ? { env: c.env } : {})
    t.equal(r.code, 2, `${c.args.join(' ')}: exit 2`)
    t.match(r.stderr.trim(), c.re)
    t.notMatch(r.stderr, /secret/, 'no proxy password echoed')
  }
})

const run = promisify(execFile)
const noTmux = await run('tmux', ['-V']).then(() => undefined, () => 'tmux is missing (apt-get install -y tmux)')

t.test('the status screen in a terminal names the transport in use', { skip: noTmux !== undefined && process.env.CI !== 'true' ? noTmux : false }, async t => {
  if (noTmux !== undefined) { t.fail(noTmux); return }
  const relay = await relayWithSharedPorts(t)
  const echo = await startEcho()
  t.teardown(() => echo.close())
  const socket = `mport-transport-${randomBytes(4).toString('hex')}`
  const tmux = (...args: string[]): Promise<{ stdout: string }> => run('tmux', ['-L', socket, ...args])
  t.teardown(() => tmux('kill-server').catch(() => {}))
  const env = cleanEnv({ MPORT_TOKEN: TOKEN, TERM: 'xterm-256color' })
  const envArgs = Object.entries(env).filter(([k]) => /^(PATH|HOME|XDG_CONFIG_HOME|MPORT_TOKEN|TERM|NO_COLOR)$/.test(k)).flatMap(([k, v]) => ['-e', `${k}=${v}`])
  const cmd = [process.execPath, '--import', 'tsx', 'bin/mport-connect.ts', String(echo.port), '--relay', `127.0.0.1:${relay.address.port}`, '--fingerprint', certFingerprint,
    '--transport', 'ws', '--relay-http-port', String(relay.httpAddress!.port), '--no-lease-file'].map(a => `'${a}'`).join(' ')
  await tmux('new-session', '-d', '-s', 'mport', '-x', '150', '-y', '45', '-c', REPO_ROOT, ...envArgs, cmd)
  await tmux('set-option', '-t', 'mport', 'remain-on-exit', 'on')
  let last = ''
  await waitFor(async () => /^Transport +ws$/m.test(last = (await tmux('capture-pane', '-p', '-t', 'mport')).stdout), { what: 'the Transport row on the screen', timeoutMs: 60_000, intervalMs: 200, diag: () => `the pane:\n${last}` })
  t.match(last, /^Transport +ws$/m, 'the screen says ws, the transport in use')
})
