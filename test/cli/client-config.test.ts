/**
 * The client config validator (packages/mport-connect/src/config): a parsed document in,
 * settings or an InvalidConfigError out. Short specs and tunnel objects mixed, every option,
 * the secrets from files and variables (through injected sources), and each error's exact
 * message: unknown keys with a suggestion, wrong types and conflicts naming the key and the tunnel.
 */
import t, { type Test } from 'tap'
import { validateClientConfig } from '../../packages/mport-connect/src/config/client-config.js'
import { reloadLine, restartLine } from '../../packages/mport-connect/src/config/reload-lines.js'
import type { SecretSources } from '../../packages/mport-connect/src/config/tunnel-entries.js'
import { InvalidConfigError } from '../../src/errors.js'

const FILE = 'client.yaml'
const files: Record<string, string> = {
  '/run/secrets/web-auth': '  admin:s3cret-from-a-file\n',
  '/run/secrets/token': 'mpt_token-from-a-file\n',
  '/run/secrets/empty': '\n',
  '/run/secrets/group': 'group-key-from-a-file\n',
}
const sources: SecretSources = {
  env: { WEB_AUTH: 'ops:from-the-env', MPORT_TEST_TOKEN: 'mpt_token-from-env', EMPTY: '' },
  readFile (f) {
    const text = files[f]
    if (text === undefined) throw Object.assign(new Error(`ENOENT: no such file ${f}`), { code: 'ENOENT' })
    return text
  },
}

const check = (doc: Record<string, unknown>): ReturnType<typeof validateClientConfig> => validateClientConfig(doc, FILE, sources)

/** The message the validator throws for `doc` (fails the test when it does not throw an InvalidConfigError). */
function failure (tt: Test, doc: Record<string, unknown>): string {
  try {
    check(doc)
  } catch (err) {
    tt.type(err, InvalidConfigError, 'an InvalidConfigError')
    tt.equal((err as InvalidConfigError).code, 'MPORT_ERR_INVALID_CONFIG')
    return (err as Error).message
  }
  tt.fail(`no error for ${JSON.stringify(doc)}`)
  return ''
}

t.test('short specs and objects mixed: every option lands in the spec', async t => {
  const c = check({
    relay: 'relay.example.com',
    token: 'mpt_inline',
    fingerprint: 'sha256:00',
    reconnect: false,
    tunnels: [
      5555,
      'web=8080',
      { name: 'adb', local: 5555, remote_port: 45555, allow_ip: ['127.0.0.1', '10.0.0.0/8'], deny_ip: '10.0.0.7', proxy_protocol: 2 },
      { name: 'site', kind: 'http', local: '192.168.1.20:3000', subdomain: 'myapp', basic_auth_file: '/run/secrets/web-auth' },
      { name: 'api', kind: 'http', local: '[::1]:9000', hostname: 'api.example.com', basic_auth_env: 'WEB_AUTH' },
      { name: 'mail', kind: 'tls', local: 8443, subdomain: 'mail' },
      { local: 2222 },
    ],
  })
  t.equal(c.relay, 'relay.example.com')
  t.equal(c.token?.reveal(), 'mpt_inline')
  t.equal(String(c.token), '***', 'the token prints masked')
  t.equal(c.reconnect, false)
  t.same(c.tunnels, [
    { name: '5555', localHost: '127.0.0.1', localPort: 5555, remotePort: 0 },
    { name: 'web', localHost: '127.0.0.1', localPort: 8080, remotePort: 0 },
    { name: 'adb', localHost: '127.0.0.1', localPort: 5555, remotePort: 45555, allowIp: ['127.0.0.1', '10.0.0.0/8'], denyIp: ['10.0.0.7'], proxyProtocol: 2 },
    { name: 'site', localHost: '192.168.1.20', localPort: 3000, remotePort: 0, kind: 'http', subdomain: 'myapp', basicAuth: 'admin:s3cret-from-a-file' },
    { name: 'api', localHost: '::1', localPort: 9000, remotePort: 0, kind: 'http', hostname: 'api.example.com', basicAuth: 'ops:from-the-env' },
    { name: 'mail', localHost: '127.0.0.1', localPort: 8443, remotePort: 0, kind: 'tls', subdomain: 'mail' },
    { name: '2222', localHost: '127.0.0.1', localPort: 2222, remotePort: 0 },
  ])
})

t.test('the short forms of today: one spec, and a leading kind word', async t => {
  t.same(check({ tunnels: 5555 }).tunnels, [{ name: '5555', localHost: '127.0.0.1', localPort: 5555, remotePort: 0 }])
  t.same(check({ tunnels: ['http', 3000, 'docs=4000'] }).tunnels, [
    { name: '3000', localHost: '127.0.0.1', localPort: 3000, remotePort: 0, kind: 'http' },
    { name: 'docs', localHost: '127.0.0.1', localPort: 4000, remotePort: 0, kind: 'http' },
  ])
  t.same(check({}), {}, 'an empty file says nothing')
})

t.test('token from token_file (trimmed) or token_env', async t => {
  t.equal(check({ token_file: '/run/secrets/token' }).token?.reveal(), 'mpt_token-from-a-file')
  t.equal(check({ token_env: 'MPORT_TEST_TOKEN' }).token?.reveal(), 'mpt_token-from-env')
})

t.test('errors: exact messages naming the key and the tunnel', async t => {
  const q = (s: string): string => `invalid config ${s}`
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['unknown top-level key', { tunels: [5555] }, q('"tunels": unknown key "tunels" in client.yaml; did you mean "tunnels"?')],
    ['unknown tunnel key, named tunnel', { tunnels: [{ name: 'ssh', local: 22, alow_ip: ['127.0.0.1'] }] }, q('"alow_ip": unknown key "alow_ip" in tunnel "ssh" in client.yaml; did you mean "allow_ip"?')],
    ['unknown tunnel key, kebab-case', { tunnels: [{ local: 22, 'remote-port': 2222 }] }, q('"remote-port": unknown key "remote-port" in tunnel tunnels[0] in client.yaml; did you mean "remote_port"?')],
    ['remote_port on http', { tunnels: [{ name: 'web', kind: 'http', local: 3000, remote_port: 8080 }] },
      q('"remote_port": "remote_port" of tunnel "web" in client.yaml is for tcp tunnels, and this one is http: http tunnels share the relay\'s HTTP(S) ports; use "subdomain" or "hostname"')],
    ['basic_auth on tcp', { tunnels: [{ name: 'db', local: 5432, basic_auth: 'a:b' }] },
      q('"basic_auth": "basic_auth" of tunnel "db" in client.yaml is for http tunnels, and this one is tcp: the relay asks for a password only on http tunnels')],
    ['basic_auth_file on tls', { tunnels: [{ name: 'mail', kind: 'tls', local: 8443, basic_auth_file: '/run/secrets/web-auth' }] },
      q('"basic_auth_file": "basic_auth_file" of tunnel "mail" in client.yaml is for http tunnels, and this one is tls: the relay asks for a password only on http tunnels')],
    ['subdomain on tcp', { tunnels: [{ name: 'db', local: 5432, subdomain: 'db' }] },
      q('"subdomain": "subdomain" of tunnel "db" in client.yaml is for http and tls tunnels, and this one is tcp: a tcp tunnel gets a public port; set "kind: http" for a name')],
    ['duplicate name', { tunnels: ['web=8080', { name: 'web', local: 8081 }] }, q('"name": two tunnels in client.yaml are named "web": give each a "name" of its own')],
    ['duplicate default name', { tunnels: [5555, { local: 5555, allow_ip: ['127.0.0.1'] }] }, q('"name": two tunnels in client.yaml are named "5555": give each a "name" of its own')],
    ['bad kind', { tunnels: [{ name: 'x', kind: 'udp', local: 53 }] }, q('"kind": "kind" of tunnel "x" in client.yaml must be tcp, http or tls, not "udp"')],
    ['no local', { tunnels: [{ name: 'x' }] }, q('"local": tunnel "x" in client.yaml needs "local": the local port or host:port to expose, like 5555 or "192.168.1.20:5555"')],
    ['a remote port in local', { tunnels: [{ name: 'x', local: '5555:45555' }] }, q('"local": "local" of tunnel "x" in client.yaml is "5555:45555": give the public port as "remote_port", not in "local"')],
    ['bad local port', { tunnels: [{ name: 'x', local: 70000 }] }, q('"local": "local" in tunnel "x" in client.yaml: "70000" is not a port number (1-65535)')],
    ['bad name', { tunnels: [{ name: 'no spaces', local: 1 }] }, q('"name": "name" in tunnel "no spaces" in client.yaml: "no spaces" is not a valid tunnel name (letters, digits, . _ -, at most 64)')],
    ['bad remote_port', { tunnels: [{ name: 'x', local: 1, remote_port: '80' }] }, q('"remote_port": "remote_port" of tunnel "x" in client.yaml must be a port number (1-65535, or 0 for any), not "80"')],
    ['bad allow_ip entry', { tunnels: [{ name: 'adb', local: 5555, allow_ip: ['127.0.0.1', 'localhost'] }] },
      q('"allow_ip": "allow_ip" in tunnel "adb" in client.yaml: "localhost" is not an IPv4/IPv6 address or CIDR (expected e.g. 203.0.113.0/24 or 2001:db8::/32)')],
    ['allow_ip not a list', { tunnels: [{ name: 'adb', local: 5555, allow_ip: 7 }] }, q('"allow_ip": "allow_ip" in tunnel "adb" in client.yaml must be a list of addresses or CIDRs, like ["127.0.0.1", "10.0.0.0/8"]')],
    ['deny_ip prefix', { tunnels: [{ name: 'adb', local: 5555, deny_ip: ['10.0.0.0/33'] }] }, q('"deny_ip": "deny_ip" in tunnel "adb" in client.yaml: "10.0.0.0/33": prefix length 33 exceeds 32 for IPv4')],
    ['proxy_protocol 3', { tunnels: [{ name: 'x', local: 1, proxy_protocol: 3 }] }, q('"proxy_protocol": "proxy_protocol" of tunnel "x" in client.yaml must be 1 or 2, not 3')],
    ['basic_auth without a colon', { tunnels: [{ name: 'web', kind: 'http', local: 3000, basic_auth: 'admin' }] }, q('"basic_auth": "basic_auth" in tunnel "web" in client.yaml: expected user:password (no ":" found)')],
    ['basic_auth and basic_auth_file', { tunnels: [{ name: 'web', kind: 'http', local: 3000, basic_auth: 'a:b', basic_auth_file: '/run/secrets/web-auth' }] },
      q('"basic_auth_file": give only one of "basic_auth", "basic_auth_file" in tunnel "web" in client.yaml')],
    ['missing basic_auth_file', { tunnels: [{ name: 'web', kind: 'http', local: 3000, basic_auth_file: '/run/secrets/none' }] },
      q('"basic_auth_file": cannot read "basic_auth_file" /run/secrets/none in tunnel "web" in client.yaml: ENOENT')],
    ['empty basic_auth_file', { tunnels: [{ name: 'web', kind: 'http', local: 3000, basic_auth_file: '/run/secrets/empty' }] },
      q('"basic_auth_file": "basic_auth_file" /run/secrets/empty in tunnel "web" in client.yaml is empty')],
    ['unset basic_auth_env', { tunnels: [{ name: 'web', kind: 'http', local: 3000, basic_auth_env: 'EMPTY' }] },
      q('"basic_auth_env": "basic_auth_env" in tunnel "web" in client.yaml names EMPTY, which is not set or empty')],
    ['token and token_env', { token: 'x', token_env: 'MPORT_TEST_TOKEN' }, q('"token_env": give only one of "token", "token_env" in client.yaml')],
    ['unset token_env', { token_env: 'MPORT_TEST_UNSET' }, q('"token_env": "token_env" in client.yaml names MPORT_TEST_UNSET, which is not set or empty')],
    ['relay not a string', { relay: 7835 }, q('"relay": "relay" in client.yaml must be a string, not 7835')],
    ['boolean as a word', { reconnect: 'no' }, q('"reconnect": "reconnect" in client.yaml must be true or false, not "no"')],
    ['tunnels a map', { tunnels: { web: 8080 } }, q('"tunnels": "tunnels" in client.yaml must be a list like [5555, "web=8080", { name: ssh, local: 22, allow_ip: [203.0.113.7] }]')],
    ['a kind word alone', { tunnels: ['http'] }, q('"tunnels": no tunnel in "tunnels" of client.yaml: name at least one, like [5555]')],
    ['a remote port on a short http spec', { tunnels: ['http', '3000:80'] }, q('"tunnels": tunnel "3000:80" in client.yaml: http tunnels use the relay\'s shared ports: drop ":80"')],
    ['a list entry of the wrong type', { tunnels: [true] }, q('"tunnels": tunnels[0] in client.yaml must be a port, a spec like "web=8080" or an object with "local", not true')],
  ]
  for (const [name, doc, message] of cases) t.equal(failure(t, doc), message, name)
})

t.test('load-balancing keys: group, its key from a file, policy, health check', async t => {
  const { tunnels } = check({
    tunnels: [
      { name: 'api', local: 8080, remote_port: 24001, group: 'api', group_key_file: '/run/secrets/group', group_policy: 'leastconn', health_check: 'http:/healthz', health_interval_ms: 2000 },
      { name: 'db', local: 5432, group: 'db', health_check: 'tcp' },
    ],
  })
  t.same(tunnels?.[0], { name: 'api', localHost: '127.0.0.1', localPort: 8080, remotePort: 24001, group: 'api', groupKey: 'group-key-from-a-file', groupPolicy: 'leastconn', healthCheck: { type: 'http', path: '/healthz', intervalMs: 2000 } })
  t.same(tunnels?.[1], { name: 'db', localHost: '127.0.0.1', localPort: 5432, remotePort: 0, group: 'db', healthCheck: { type: 'tcp' } })
  const q = (m: string): string => `invalid config ${m}`
  t.equal(failure(t, { tunnels: [{ name: 'x', local: 1, group_policy: 'leastconn' }] }), q('"group_policy": "group_policy" of tunnel "x" in client.yaml needs "group": the load-balancing group to join'))
  t.equal(failure(t, { tunnels: [{ name: 'x', local: 1, group: 'x', group_policy: 'random' }] }), q('"group_policy": "group_policy" of tunnel "x" in client.yaml must be roundrobin or leastconn, not "random"'))
  t.equal(failure(t, { tunnels: [{ name: 'x', local: 1, group: 'x', health_check: 'udp' }] }), q('"health_check": tunnel "x" in client.yaml: "udp" is not tcp, http or http:/path'))
  t.equal(failure(t, { tunnels: [{ name: 'x', local: 1, group: 'x', health_check: 'tcp', health_interval_ms: 5 }] }), q('"health_interval_ms": tunnel "x" in client.yaml: 5 is not a whole number of ms, at least 100'))
  t.notMatch(failure(t, { tunnels: [{ name: 'x', local: 1, group: 'bad name', group_key: 'k-9f' }] }), /k-9f/, 'the key is not in a message')
})

t.test('no secret in any error message', async t => {
  const msg = failure(t, { tunnels: [{ name: 'db', local: 5432, basic_auth_file: '/run/secrets/web-auth' }] })
  t.notMatch(msg, /s3cret/, 'the password read from the file is not in the message')
  const bad = failure(t, { tunnels: [{ name: 'web', kind: 'http', local: 3000, basic_auth: 'admin:\u0001hidden' }] })
  t.notMatch(bad, /hidden/, 'nor is a bad password')
})

t.test('the reload lines', async t => {
  t.equal(reloadLine({ added: ['web'], removed: ['ssh'], changed: ['api', 'db'], unchanged: ['adb'] }), 'reload: +web -ssh ~api ~db')
  t.equal(reloadLine({ added: [], removed: [], changed: [], unchanged: ['adb'] }), 'reload: no change')
  t.equal(restartLine(['relay', 'token']), 'reload: relay, token changed: that needs a restart; the running connection keeps the old value')
})
