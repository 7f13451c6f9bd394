/**
 * `mport-connect login` is used by the tunnel command (issue 14), through the real bins and a
 * real relay with its API: login stores a tunnel token for the relay the API names (0600
 * credentials file), `mport-connect <port> --relay …` without --token uses it and says which
 * login (never the token), and `logout` revokes it and forgets it.
 */
import { readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { readCredentials } from '../packages/mport-connect/src/account-commands.js'
import { cleanup, relayArgs, runBin, spawnBin, tmpDir } from './helpers/spawn.js'
import { connectTo, roundTrip, startEcho } from './helpers/tunnel.js'
import { killChildren, run, secrets } from './cli/fixtures/accounts.js'

t.teardown(cleanup)
t.teardown(killChildren)

const PASSWORD = 'login-is-used-password'
secrets.add(PASSWORD)

t.test('login stores a tunnel token for the relay; the tunnel command uses it; logout revokes it', async t => {
  const echo = await startEcho()
  t.teardown(() => echo.close())
  const relay = spawnBin('mport-relay', relayArgs(path.join(tmpDir(), 'data'), ['--api-port', '0', '--open-signup']))
  const listening = await relay.waitLine(/mport relay listening on /, 'the listening line')
  const controlPort = Number(/listening on 127\.0\.0\.1:(\d+) /.exec(listening)?.[1])
  const apiLine = await relay.waitLine(/^\s+api:\s+http:/, 'the api line')
  const api = /(http:\/\/127\.0\.0\.1:\d+)\/docs/.exec(apiLine)?.[1] ?? ''
  t.ok(controlPort > 0 && api !== '', `relay on ${controlPort}, API at ${api}`)
  const signup = await fetch(`${api}/v1/signup`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'alice', password: PASSWORD }) })
  t.equal(signup.status, 201, 'alice signed up')
  const health = await (await fetch(`${api}/v1/health`)).json() as { relay?: string }
  t.equal(health.relay, `127.0.0.1:${controlPort}`, '/v1/health names the control address')

  const config = path.join(tmpDir('mport-cfg-'), 'config')
  const env = { XDG_CONFIG_HOME: config }
  const file = path.join(config, 'mport', 'credentials.json')
  const login = await run(t, 'mport-connect', ['login', '--api', api, '--user', 'alice', '--password-stdin'], { stdin: PASSWORD, env })
  t.equal(login.code, 0, `login exits 0 (${login.stderr})`)
  t.match(login.stdout, new RegExp(`^logged in to ${api} as alice \\(user\\); the session lasts until .*; tunnels to 127\\.0\\.0\\.1:${controlPort} use its tunnel token "mport-connect login \\(.*\\)" when no --token is given and is kept in .*credentials\\.json\n$`))
  t.equal(login.stderr, '', 'nothing on stderr')
  t.equal(statSync(file).mode & 0o777, 0o600, 'credentials.json stays 0600')
  const stored = (await readCredentials(file)).sessions[api]
  const tunnelToken = stored?.tunnel?.token ?? ''
  t.match(stored?.tunnel, { relay: `127.0.0.1:${controlPort}`, token: /^mpt_/, id: /^tok_/ }, 'the tunnel token is stored with the session, for the relay address')
  secrets.add(tunnelToken)
  secrets.add(stored?.token ?? 'no-session')

  // No --token, MPORT_TOKEN or config token: the stored login's tunnel token.
  const client = spawnBin('mport-connect', [String(echo.port), '--relay', `127.0.0.1:${controlPort}`], { env })
  t.teardown(() => client.kill())
  const used = await client.waitLine(/^using the login /, 'the login line')
  t.equal(used, `using the login of alice at ${api} (tunnel token "${stored?.tunnel?.name}" for 127.0.0.1:${controlPort}, from ${file})`, 'says which stored login it uses')
  const tunnelLine = await client.waitLine(/^tcp:\/\//, 'the tunnel line')
  const publicPort = Number(/^tcp:\/\/127\.0\.0\.1:(\d+) /.exec(tunnelLine)?.[1])
  const back = await roundTrip(await connectTo(publicPort), Buffer.from('hello through the login'))
  t.equal(back.toString(), 'hello through the login', 'the tunnel serves')
  t.notOk(client.output.includes(tunnelToken), 'the tunnel token is never printed')
  t.notOk(client.output.includes(stored?.token ?? 'no-session'), 'the session token is never printed')

  // Another address for the same machine is another relay: no stored login for it.
  const wrongHost = await runBin('mport-connect', [String(echo.port), '--relay', `localhost:${controlPort}`], { env })
  t.equal(wrongHost.code, 2, 'another relay address has no stored login: exit 2')
  t.match(wrongHost.stderr, new RegExp(`^mport-connect: no token given: .*mport-connect login --api .*\\(no stored login for localhost:${controlPort}\\)`))

  // logout revokes the tunnel token (the running client is disconnected) and forgets it.
  const logout = await run(t, 'mport-connect', ['logout'], { env })
  t.equal(logout.code, 0, `logout exits 0 (${logout.stderr})`)
  t.equal(logout.stdout, `logged out of ${api}; its tunnel token for 127.0.0.1:${controlPort} is revoked\n`)
  t.notOk(readFileSync(file, 'utf8').includes(tunnelToken), 'the tunnel token is gone from the file')
  await client.waitLine(/^(disconnected|reconnecting)/, 'the client losing its revoked login')
  const after = await runBin('mport-connect', [String(echo.port), '--relay', `127.0.0.1:${controlPort}`], { env })
  t.equal(after.code, 2, 'after logout: no token, exit 2')
  t.match(after.stderr, /^mport-connect: no token given/)
  const direct = await runBin('mport-connect', [String(echo.port), '--relay', `127.0.0.1:${controlPort}`, '--token', tunnelToken, '--no-retry', '--no-reconnect'], { env })
  t.equal(direct.code, 1, 'the revoked token is refused by the relay: exit 1')
  t.match(direct.stderr, /MPORT_ERR_UNAUTHENTICATED|MPORT_ERR_AUTH/)
})
