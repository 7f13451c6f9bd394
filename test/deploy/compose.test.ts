/**
 * docker-compose.yml, checked without a Docker engine (none runs here): valid against the
 * compose-spec JSON schema (ajv; a typo is shown to fail), every file it mounts present,
 * every secret one deploy/docker/make-secrets.sh writes, depends_on waiting only on services
 * with a healthcheck, each healthcheck a command its image ships (the relay's is the
 * Dockerfile's, run for real by rootfs.test.ts; PostgreSQL's pg_isready and Prometheus's
 * busybox wget are run here against real servers from Debian), Prometheus loading the mounted
 * config and alert rules, the relay config it mounts accepted by the real relay, and the wiring
 * between the services (ports, the scrape target, Grafana's data source and dashboards).
 *
 * Needs PostgreSQL, Prometheus and busybox (.ci/run installs them); under CI a missing one fails.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { parse as parseYaml } from 'yaml'
import { REPO_ROOT, runBin, tmpDir, cleanup } from '../helpers/spawn.js'
import { postgresTestOptions, startPostgres } from '../helpers/postgres.js'
import { prometheusTestOptions, startPrometheus } from '../helpers/prometheus.js'
import { waitFor } from '../helpers/wait.js'
import { parseDockerfile, last } from './dockerfile.js'
import { composeValidator, describeErrors } from './compose-tools.js'

t.setTimeout(600_000)
t.teardown(cleanup)

interface Healthcheck { test: string[], interval?: string, timeout?: string, retries?: number, start_period?: string }
interface Service {
  image: string
  build?: string
  volumes?: string[]
  secrets?: string[]
  ports?: string[]
  environment?: Record<string, string>
  depends_on?: Record<string, { condition: string }>
  healthcheck?: Healthcheck
  command?: string[]
}
interface Compose { services: Record<string, Service>, secrets: Record<string, { file: string }>, volumes: Record<string, unknown> }

const readYaml = <T>(file: string): T => parseYaml(readFileSync(path.join(REPO_ROOT, file), 'utf8')) as T
const compose = readYaml<Compose>('docker-compose.yml')
const relayConfig = readYaml<Record<string, unknown>>('deploy/relay.yaml')
const { relay, postgres, prometheus, grafana } = compose.services

/**
 * What each third-party image ships for its healthcheck, from the images' own build files (not
 * run here: no image can be pulled). prom/prometheus is built on prometheus/busybox and
 * grafana/grafana-oss on Alpine, both with busybox's wget; postgres ships pg_isready.
 */
const IMAGE_COMMANDS: Record<string, string[]> = {
  'postgres:16-bookworm': ['pg_isready', 'psql'],
  'prom/prometheus:v2.53.4': ['wget', 'promtool'],
  'grafana/grafana-oss:11.6.1': ['wget', 'curl'],
}

/** Bind mounts (`./host:/container[:ro]`) of a service, as [host path, container path]. */
function bindMounts (s: Service): Array<[string, string]> {
  return (s.volumes ?? []).filter(v => v.startsWith('./')).map(v => v.split(':').slice(0, 2) as [string, string])
}

t.test('valid against the compose-spec schema; a mistake is not', async t => {
  const { validate, schemaTitle } = await composeValidator()
  t.equal(schemaTitle, 'Compose Specification')
  t.ok(validate(compose), `docker-compose.yml is valid${validate.errors ? `:\n${describeErrors(validate.errors)}` : ''}`)
  const typo = structuredClone(compose)
  ;(typo.services.relay!.healthcheck as unknown as Record<string, unknown>).intervall = '15s'
  t.notOk(validate(typo), 'a misspelt healthcheck key is rejected')
  t.match(describeErrors(validate.errors), /healthcheck.*additionalProperty.*intervall/)
  const badPorts = structuredClone(compose)
  ;(badPorts.services.relay as unknown as Record<string, unknown>).ports = '7835:7835'
  t.notOk(validate(badPorts), 'ports as a string instead of a list is rejected')
})

t.test('every file it mounts exists; every secret is one make-secrets.sh writes', async t => {
  for (const [name, s] of Object.entries(compose.services)) {
    for (const [host] of bindMounts(s)) t.ok(existsSync(path.join(REPO_ROOT, host)), `${name}: ${host} exists`)
    for (const v of s.volumes ?? []) {
      if (!v.startsWith('./')) t.ok(v.split(':')[0]! in compose.volumes, `${name}: named volume ${v.split(':')[0]} is declared`)
    }
    for (const secret of s.secrets ?? []) t.ok(compose.secrets[secret], `${name}: secret ${secret} is declared`)
  }
  const dir = path.join(tmpDir('mport-secrets-'), 'secrets')
  const made = spawnSync('sh', [path.join(REPO_ROOT, 'deploy/docker/make-secrets.sh'), dir], { encoding: 'utf8' })
  t.equal(made.status, 0, `make-secrets.sh ran${made.stderr ? `: ${made.stderr}` : ''}`)
  // The cluster override (docker-compose.cluster.yml, checked in cluster-deploy.test.ts) adds its key.
  const named = [...Object.values(compose.secrets), ...Object.values(readYaml<Compose>('docker-compose.cluster.yml').secrets)]
  t.same(readdirSync(dir).sort(), named.map(s => path.basename(s.file)).sort(), 'it writes exactly the secrets the compose files name')
  for (const s of Object.values(compose.secrets)) t.equal(path.dirname(s.file), './deploy/secrets', `${s.file} is in deploy/secrets`)
  t.ok(spawnSync('git', ['check-ignore', '-q', 'deploy/secrets/relay_token'], { cwd: REPO_ROOT }).status === 0, 'git ignores deploy/secrets')
})

t.test('make-secrets.sh: random values, the database URL carries the PostgreSQL password, a second run keeps them', async t => {
  const dir = path.join(tmpDir('mport-secrets-'), 'secrets')
  spawnSync('sh', [path.join(REPO_ROOT, 'deploy/docker/make-secrets.sh'), dir])
  const read = (f: string): string => readFileSync(path.join(dir, f), 'utf8').trim()
  const first = Object.fromEntries(readdirSync(dir).map(f => [f, read(f)]))
  t.match(first.relay_token, /^mpt_[0-9a-f]{48}$/, 'a relay token of 24 random bytes')
  t.match(first.postgres_password, /^[0-9a-f]{48}$/)
  t.equal(first.database_url, `postgres://mport:${first.postgres_password}@postgres:5432/mport`, 'the URL uses the same password, the service name and the compose user/db')
  t.not(first.postgres_password, first.grafana_admin_password, 'each secret is its own')
  t.equal(statSync(dir).mode & 0o777, 0o700, 'the folder is private to its owner')
  const again = spawnSync('sh', [path.join(REPO_ROOT, 'deploy/docker/make-secrets.sh'), dir], { encoding: 'utf8' })
  t.match(again.stdout, /kept .*relay_token/)
  t.same(Object.fromEntries(readdirSync(dir).map(f => [f, read(f)])), first, 'a second run changes nothing')
})

t.test('depends_on waits for health, on services that have a healthcheck', async t => {
  for (const [name, s] of Object.entries(compose.services)) {
    t.ok(s.healthcheck, `${name} has a healthcheck`)
    for (const [dep, { condition }] of Object.entries(s.depends_on ?? {})) {
      t.equal(condition, 'service_healthy', `${name} waits for ${dep} to be healthy`)
      t.ok(compose.services[dep]?.healthcheck, `${dep} has the healthcheck ${name} waits for`)
    }
  }
  t.same(Object.keys(relay!.depends_on ?? {}), ['postgres'], 'the relay starts after PostgreSQL (its store)')
})

t.test('each healthcheck runs a command its image has', async t => {
  const dockerfileHc = last(parseDockerfile(path.join(REPO_ROOT, 'Dockerfile')).stages.at(-1)!, 'HEALTHCHECK')!.exec!
  t.same(relay!.healthcheck!.test, ['CMD', ...dockerfileHc], 'the relay\'s is the Dockerfile\'s HEALTHCHECK (run in the image by rootfs.test.ts)')
  t.ok(relay!.build !== undefined, 'the relay image is built from this repository')
  for (const [name, s] of Object.entries(compose.services)) {
    if (name === 'relay') continue
    const [form, exe] = s.healthcheck!.test
    t.equal(form, 'CMD', `${name}: exec form, no shell needed in the image`)
    t.ok(IMAGE_COMMANDS[s.image]?.includes(exe!), `${name}: ${exe} ships in ${s.image}`)
  }
  t.match(prometheus!.healthcheck!.test.at(-1), /^http:\/\/127\.0\.0\.1:9090\/-\/healthy$/, 'Prometheus\'s own health endpoint')
  t.match(grafana!.healthcheck!.test.at(-1), /^http:\/\/127\.0\.0\.1:3000\/api\/health$/, 'Grafana\'s own health endpoint')
})

t.test('PostgreSQL\'s healthcheck, run against a real PostgreSQL: 0 when it serves, not 0 when it is down', postgresTestOptions(), async t => {
  const pgBin = spawnSync('sh', ['-c', 'ls /usr/lib/postgresql/*/bin/pg_isready | tail -n 1'], { encoding: 'utf8' }).stdout.trim()
  const server = await startPostgres()
  const [, exe, ...args] = postgres!.healthcheck!.test
  t.equal(exe, 'pg_isready')
  // The compose command as written; the test server's port comes through PGPORT, as pg_isready reads it.
  const check = (): number | null => spawnSync(pgBin, args, { env: { ...process.env, PGPORT: String(server.port) }, encoding: 'utf8', timeout: 30_000 }).status
  t.equal(check(), 0, `${exe} ${args.join(' ')} → 0 while PostgreSQL accepts connections`)
  await server.stop()
  t.not(check(), 0, 'and not 0 once it is stopped')
})

const busyboxMissing = spawnSync('sh', ['-c', 'command -v busybox']).status === 0 ? undefined : 'busybox is missing (apt-get install busybox): it runs the wget the Prometheus image ships'
if (busyboxMissing !== undefined && process.env.CI === 'true') t.fail(busyboxMissing)

t.test('Prometheus as compose runs it: the mounted config and alert rules load; its healthcheck passes, then fails when it stops', { ...prometheusTestOptions(), ...(busyboxMissing ? { skip: busyboxMissing } : {}) }, async t => {
  const mounted = Object.fromEntries(bindMounts(prometheus!).map(([host, inside]) => [inside, host]))
  const configFile = mounted['/etc/prometheus/prometheus.yml']!
  const config = readYaml<{ rule_files: string[] }>(configFile)
  // Rule files are relative to the config's folder; compose mounts each one beside it.
  for (const rule of config.rule_files) t.ok(mounted[path.posix.join('/etc/prometheus', rule)], `rule file ${rule} is mounted beside the config`)
  const text = readFileSync(path.join(REPO_ROOT, configFile), 'utf8')
    .replace(/^rule_files:\n(?:\s+- .*\n)+/m, `rule_files:\n${config.rule_files.map(r => `  - ${JSON.stringify(path.join(REPO_ROOT, mounted[path.posix.join('/etc/prometheus', r)]!))}`).join('\n')}\n`)
  const server = await startPrometheus(text)
  const rules = await (await fetch(`http://127.0.0.1:${server.port}/api/v1/rules`)).json() as { data: { groups: Array<{ rules: Array<{ name: string, type: string }> }> } }
  const alerts = rules.data.groups.flatMap(g => g.rules).filter(r => r.type === 'alerting')
  t.ok(alerts.length >= 5, `the alert rules loaded (${alerts.map(a => a.name).join(', ')})`)
  let targets: Awaited<ReturnType<typeof server.targets>> = []
  await waitFor(async () => (targets = await server.targets()).length > 0, { what: 'Prometheus to list its scrape target', timeoutMs: 60_000, intervalMs: 200 })
  t.match(targets, [{ scrapeUrl: `http://relay:${relayConfig.ops_port as number}/metrics` }], 'it scrapes the relay\'s ops listener by its compose name')
  // The healthcheck as written, at the test server's port: busybox's wget, as the image has it.
  const [, exe, ...args] = prometheus!.healthcheck!.test
  const check = (): number | null => spawnSync('busybox', [exe!, ...args.map(a => a.replace('127.0.0.1:9090', `127.0.0.1:${server.port}`))], { timeout: 30_000 }).status
  t.equal(check(), 0, `${exe} ${args.join(' ')} → 0 while Prometheus serves`)
  await server.stop()
  t.not(check(), 0, 'and not 0 once it is stopped')
})

t.test('the relay config it mounts is accepted by the real relay, secrets masked', async t => {
  const mounts = bindMounts(relay!)
  t.ok(mounts.some(([host, inside]) => host === './deploy/relay.yaml' && inside === '/etc/mport/relay.yaml'), 'deploy/relay.yaml is mounted where the image\'s CMD reads its config')
  t.same(relay!.secrets, ['relay_token', 'database_url'])
  t.equal(relayConfig.token_file, '/run/secrets/relay_token', 'the token from the compose secret')
  t.equal(relayConfig.database_file, '/run/secrets/database_url', 'the database URL from the compose secret')
  // The same file with /run/secrets pointing at secrets make-secrets.sh wrote.
  const dir = tmpDir('mport-compose-relay-')
  spawnSync('sh', [path.join(REPO_ROOT, 'deploy/docker/make-secrets.sh'), path.join(dir, 'secrets')])
  const file = path.join(dir, 'relay.yaml')
  writeFileSync(file, readFileSync(path.join(REPO_ROOT, 'deploy/relay.yaml'), 'utf8').replaceAll('/run/secrets/', `${dir}/secrets/`))
  const r = await runBin('mport-relay', ['config', 'print', '--config', file, '--json'], { env: { MPORT_PUBLIC_HOST: 'relay.example.com' } })
  t.equal(r.code, 0, `config print accepts it${r.stderr ? `: ${r.stderr}` : ''}`)
  const printed = JSON.parse(r.stdout) as Record<string, unknown>
  t.match(printed, { port: relayConfig.port, ops_port: relayConfig.ops_port, api_port: relayConfig.api_port, data_dir: '/data', public_host: 'relay.example.com', token: '***' })
  t.match(printed.database, /^postgres:\/\/mport:\*\*\*@postgres:5432\/mport$/, 'the database password masked')
  for (const f of ['relay_token', 'postgres_password']) t.notOk(r.stdout.includes(readFileSync(path.join(dir, 'secrets', f), 'utf8').trim()), `${f} is never printed`)
})

t.test('wiring: published ports, the scrape target, Grafana\'s data source and dashboards', async t => {
  const ports = relay!.ports ?? []
  t.ok(ports.includes(`${relayConfig.port as number}:${relayConfig.port as number}`), 'the control port on every interface')
  t.ok(ports.includes(`${relayConfig.ports as string}:${relayConfig.ports as string}`), 'the public range, the same on both sides (tunnel URLs name the port)')
  t.ok(ports.includes(`127.0.0.1:${relayConfig.api_port as number}:${relayConfig.api_port as number}`), 'the REST API on the host\'s loopback only')
  t.notOk(ports.some(p => p.endsWith(`:${relayConfig.ops_port as number}`)), 'the ops listener is not published (Prometheus reaches it inside)')
  for (const [name, s] of Object.entries({ prometheus, grafana })) {
    t.ok((s!.ports ?? []).every(p => p.startsWith('127.0.0.1:')), `${name} on the host's loopback only`)
  }
  t.ok(relay!.environment?.MPORT_PUBLIC_HOST?.startsWith('${MPORT_PUBLIC_HOST:?'), 'compose refuses to start without MPORT_PUBLIC_HOST')

  const promMounts = Object.fromEntries(bindMounts(prometheus!))
  t.equal(promMounts['./deploy/prometheus/prometheus.yml'], '/etc/prometheus/prometheus.yml')
  t.equal(promMounts['./deploy/prometheus/alerts.yml'], '/etc/prometheus/alerts.yml')
  t.ok(prometheus!.command?.includes('--config.file=/etc/prometheus/prometheus.yml'), 'Prometheus reads the mounted config')
  const promConfig = readFileSync(path.join(REPO_ROOT, 'deploy/prometheus/prometheus.yml'), 'utf8')
  t.match(promConfig, new RegExp(`relay:${relayConfig.ops_port as number}\\b`), `prometheus.yml scrapes relay:${relayConfig.ops_port as number} (the ops listener on the compose network)`)

  const datasources = readYaml<{ datasources: Array<{ uid: string, type: string, url: string }> }>('deploy/grafana/provisioning/datasources/prometheus.yml').datasources
  t.match(datasources, [{ type: 'prometheus', url: 'http://prometheus:9090' }], 'one Prometheus data source, the compose service')
  const providers = readYaml<{ providers: Array<{ options: { path: string } }> }>('deploy/grafana/provisioning/dashboards/mport.yml').providers
  const grafanaMounts = Object.fromEntries(bindMounts(grafana!))
  t.equal(grafanaMounts['./deploy/grafana/provisioning'], '/etc/grafana/provisioning', 'the provisioning folder where Grafana reads it')
  t.equal(providers[0]?.options.path, grafanaMounts['./deploy/grafana/dashboards'], 'the dashboard provider reads the folder the dashboards are mounted at')
  const dashboard = readFileSync(path.join(REPO_ROOT, 'deploy/grafana/dashboards/mport.json'), 'utf8')
  const uids = new Set([...dashboard.matchAll(/"datasource"\s*:\s*\{[^}]*"uid"\s*:\s*"([^"]+)"/g)].map(m => m[1]!))
  const known = new Set([datasources[0]!.uid, '${datasource}', '${DS_PROMETHEUS}', '-- Grafana --', 'grafana'])
  t.same([...uids].filter(u => !known.has(u)), [], `the dashboard names only the provisioned data source (${[...uids].join(', ') || 'none by uid'})`)
})
