/**
 * The systemd units (deploy/systemd), checked with Debian's systemd-analyze (no booted systemd
 * here, so nothing is started): `verify` finds no problem in the relay unit or an instance of
 * the client template, with the commands they run in place as `npm install -g` puts them (in a
 * private mount namespace, /usr/local/bin holds links to the packages' bins), and it does flag
 * a misspelt key (the check is not blind); `security --offline` scores each unit's exposure and
 * the score is bounded. Then what the units must say: SIGHUP for reload, secrets only through
 * LoadCredential=, the relay's one capability, the client's none, and the hardening options.
 *
 * Needs systemd-analyze (Debian `systemd`; .ci/run installs it) and root for the mount
 * namespace. Under CI a missing tool fails; locally it skips.
 */
import { spawnSync } from 'node:child_process'
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { REPO_ROOT, tmpDir, cleanup } from '../helpers/spawn.js'

t.teardown(cleanup)

/** Overall exposure (systemd-analyze security, 0 safest … 10) a unit may have at most. */
const MAX_EXPOSURE = 2.0
const UNITS = path.join(REPO_ROOT, 'deploy/systemd')

function missingTools (): string | undefined {
  if (spawnSync('sh', ['-c', 'command -v systemd-analyze && command -v unshare']).status !== 0) return 'systemd-analyze is missing (apt-get install systemd)'
  if (process.getuid?.() !== 0) return 'needs root (a mount namespace for /usr/local/bin)'
  return undefined
}
const missing = missingTools()
if (missing !== undefined && process.env.CI === 'true') t.fail(`the systemd checks cannot run: ${missing}`)

/** The units as they would be installed: the template as one instance. */
function installUnits (): { dir: string, relay: string, client: string } {
  const dir = tmpDir('mport-units-')
  const relay = path.join(dir, 'mport-relay.service')
  const client = path.join(dir, 'mport-connect@laptop.service')
  copyFileSync(path.join(UNITS, 'mport-relay.service'), relay)
  copyFileSync(path.join(UNITS, 'mport-connect@.service'), client)
  return { dir, relay, client }
}

/** systemd-analyze verify with the bins where the units expect them (npm install -g's links). */
function verify (...units: string[]): { status: number | null, output: string } {
  const script = [
    'set -e',
    'mount -t tmpfs tmpfs /usr/local/bin',
    `ln -s ${JSON.stringify(path.join(REPO_ROOT, 'packages/mport-relay/bin/mport-relay.js'))} /usr/local/bin/mport-relay`,
    `ln -s ${JSON.stringify(path.join(REPO_ROOT, 'packages/mport-connect/bin/mport-connect.js'))} /usr/local/bin/mport-connect`,
    'exec systemd-analyze verify --man=no "$@"',
  ].join('\n')
  const r = spawnSync('unshare', ['-m', 'sh', '-c', script, '-', ...units], { encoding: 'utf8', timeout: 60_000 })
  return { status: r.status, output: `${r.stdout}${r.stderr}` }
}

/** A unit's settings, key → values in order (comments and blank lines left out). */
function settings (file: string): Map<string, string[]> {
  const map = new Map<string, string[]>()
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim())
    if (m === null) continue
    map.set(m[1]!, [...(map.get(m[1]!) ?? []), m[2]!])
  }
  return map
}

t.test('systemd-analyze verify: no problem in either unit; a misspelt key is flagged', { skip: missing }, async t => {
  const { dir, relay, client } = installUnits()
  const clean = verify(relay, client)
  t.equal(clean.status, 0, 'verify exits 0')
  t.equal(clean.output, '', `and says nothing${clean.output ? `:\n${clean.output}` : ''}`)

  const broken = path.join(dir, 'mport-broken.service')
  writeFileSync(broken, readFileSync(relay, 'utf8').replace('ProtectSystem=strict', 'ProtectSytem=strict').replace('ExecStart=/usr/local/bin/mport-relay', 'ExecStart=/usr/local/bin/mport-relai'))
  const bad = verify(broken)
  t.match(bad.output, /Unknown key 'ProtectSytem'/, 'a misspelt key is reported')
  t.match(bad.output, /mport-relai is not executable/, 'so is a command that is not there')
})

t.test('systemd-analyze security: each unit\'s exposure is low', { skip: missing }, async t => {
  const { relay, client } = installUnits()
  for (const unit of [relay, client]) {
    const r = spawnSync('systemd-analyze', ['security', '--offline=yes', `--threshold=${MAX_EXPOSURE * 10}`, unit], { encoding: 'utf8', timeout: 60_000 })
    const score = /Overall exposure level for \S+: ([\d.]+) (\S+)/.exec(r.stdout)
    t.ok(score, `${path.basename(unit)}: an overall score${score ? '' : `\n${r.stdout}${r.stderr}`}`)
    t.comment(`${path.basename(unit)}: exposure ${score?.[1]} ${score?.[2]} (systemd-analyze security --offline=yes)`)
    t.ok(Number(score?.[1]) <= MAX_EXPOSURE, `${path.basename(unit)}: exposure ${score?.[1]} ≤ ${MAX_EXPOSURE}`)
    t.equal(r.status, 0, '--threshold agrees')
  }
})

t.test('what the units say: reload, credentials, capabilities, hardening', async t => {
  const relay = settings(path.join(UNITS, 'mport-relay.service'))
  const client = settings(path.join(UNITS, 'mport-connect@.service'))
  t.same(relay.get('ExecStart'), ['/usr/local/bin/mport-relay --config /etc/mport/relay.yaml'])
  t.same(client.get('ExecStart'), ['/usr/local/bin/mport-connect --config /etc/mport/connect/%i.yaml'], 'one client per config file, named by the instance')
  for (const [name, unit] of [['relay', relay], ['client', client]] as const) {
    t.same(unit.get('ExecReload'), ['/bin/kill -HUP $MAINPID'], `${name}: reload is SIGHUP`)
    t.same(unit.get('Restart'), ['on-failure'], `${name}: restarted on failure`)
    t.same(unit.get('RestartPreventExitStatus'), ['2'], `${name}: not restarted on a config error (exit 2)`)
    t.ok(unit.get('LoadCredential')?.some(c => c.startsWith('token:')), `${name}: the token as a credential`)
    t.same((unit.get('Environment') ?? []).filter(e => /TOKEN|PASSWORD|SECRET|DATABASE/i.test(e)), [], `${name}: no secret in Environment=`)
    for (const [key, value] of [['DynamicUser', 'yes'], ['ProtectSystem', 'strict'], ['ProtectHome', 'yes'], ['NoNewPrivileges', 'yes'], ['PrivateTmp', 'yes'], ['PrivateDevices', 'yes'], ['RestrictAddressFamilies', 'AF_INET AF_INET6 AF_UNIX'], ['SystemCallArchitectures', 'native'], ['UMask', '0077']] as const) {
      t.same(unit.get(key), [value], `${name}: ${key}=${value}`)
    }
    t.ok(unit.get('SystemCallFilter')?.includes('@system-service'), `${name}: a system call allow list`)
    t.ok(unit.get('StateDirectory')?.[0], `${name}: a StateDirectory for its state`)
  }
  t.same(relay.get('CapabilityBoundingSet'), ['CAP_NET_BIND_SERVICE'], 'relay: only the capability to bind 80/443')
  t.same(relay.get('AmbientCapabilities'), ['CAP_NET_BIND_SERVICE'])
  t.same(client.get('CapabilityBoundingSet'), [''], 'client: no capability at all')
  t.same(relay.get('StateDirectory'), ['mport-relay'])
  t.ok(relay.get('Environment')?.includes('MPORT_DATA_DIR=/var/lib/mport-relay'), 'relay: its data dir is the StateDirectory')
  t.same(client.get('StateDirectory'), ['mport-connect/%i'], 'client: a state folder per instance (lease, known relays)')
  t.ok(client.get('Environment')?.includes('XDG_CONFIG_HOME=/var/lib/mport-connect/%i'), 'client: its ~/.config there')
  // The credential paths the comments tell an operator to put in the config files.
  t.match(readFileSync(path.join(UNITS, 'mport-relay.service'), 'utf8'), /token_file: \/run\/credentials\/mport-relay\.service\/token/)
  t.match(readFileSync(path.join(UNITS, 'mport-connect@.service'), 'utf8'), /token_file: \/run\/credentials\/mport-connect@NAME\.service\/token/)
})
