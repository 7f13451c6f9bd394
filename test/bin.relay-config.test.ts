/**
 * `mport-relay --config` as a real process (issue 15, the relay config file): a YAML and a JSON
 * file each start a relay with the file's host and port range; a flag overrides the file; an
 * unknown key exits 2 with a suggestion; `token_file` is the token a client connects with and
 * never printed; `mport-relay config print` shows the effective config with secrets as `***`.
 */
import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import t, { type Test } from 'tap'
import { cleanup, runBin, spawnBin, tmpDir, type BinProcess } from './helpers/spawn.js'
import { connectTo, roundTrip, startEcho } from './helpers/tunnel.js'
import { sha256 } from './helpers/digest.js'
import { oneStderrLine } from './helpers/bin-output.js'

t.setTimeout(600_000) // a dozen bin runs; on a loaded machine each start takes seconds (every wait inside is bounded)
t.teardown(cleanup)

function write (dir: string, name: string, text: string): string {
  const file = path.join(dir, name)
  writeFileSync(file, text)
  return file
}

async function stop (tt: Test, proc: BinProcess): Promise<void> {
  proc.signal('SIGTERM')
  tt.equal((await proc.waitExit()).code, 0, 'relay exits 0 on SIGTERM')
}

t.test('a YAML file (snake_case) starts the relay; its token_file is the token a client connects with, never printed', async t => {
  const dir = tmpDir()
  const token = `mpt_from-a-file-${randomBytes(8).toString('hex')}`
  const tokenFile = write(dir, 'relay.token', `  ${token}\n\n`) // trimmed
  const config = write(dir, 'relay.yaml', [
    '# the relay of the test',
    'host: 127.0.0.1',
    'port: 0',
    'bind_host: 127.0.0.1',
    'public_host: 127.0.0.1',
    'ports: 41000-41999',
    `data_dir: ${JSON.stringify(path.join(dir, 'data'))}`,
    `token_file: ${JSON.stringify(tokenFile)}`,
    'json: true',
    'verbose: true',
    '',
  ].join('\n'))
  const relay = spawnBin('mport-relay', ['--config', config])
  t.teardown(() => relay.kill())
  const ev = await relay.waitEvent('listening')
  t.match(ev, { address: '127.0.0.1', publicHost: '127.0.0.1', ports: '41000-41999' }, 'host, public host and port range from the file')
  const port = ev.port as number
  t.ok(port > 0, 'a control port was chosen (port: 0)')

  const echo = await startEcho()
  t.teardown(() => echo.close())
  const client = spawnBin('mport-connect', [String(echo.port), '--relay', `127.0.0.1:${port}`, '--token', token, '--fingerprint', ev.fingerprint as string])
  t.teardown(() => client.kill())
  const line = await client.waitLine(/^tcp:\/\//, 'the tunnel line')
  const publicPort = Number(/^tcp:\/\/127\.0\.0\.1:(\d+) /.exec(line)?.[1])
  t.ok(publicPort >= 41000 && publicPort <= 41999, `the public port is in the file's range: ${line}`)
  const data = randomBytes(64 * 1024)
  const echoed = await roundTrip(await connectTo(publicPort), data)
  t.equal(sha256(echoed), sha256(data), 'bytes went through the tunnel and back')
  await relay.waitEvent('tunnel-up')

  client.signal('SIGINT')
  t.equal((await client.waitExit()).code, 0, 'client exits 0')
  await stop(t, relay)
  t.notOk(relay.output.includes(token), 'the relay never prints the token from token_file')
  t.notOk(client.output.includes(token), 'nor does the client')
  t.equal(relay.stderr, '', 'nothing on the relay stderr')

  t.test('a wrong token is refused by that relay', async t => {
    const relay2 = spawnBin('mport-relay', ['--config', config])
    t.teardown(() => relay2.kill())
    const ev2 = await relay2.waitEvent('listening')
    const r = await runBin('mport-connect', [String(echo.port), '--relay', `127.0.0.1:${ev2.port as number}`, '--token', 'mpt_wrong', '--fingerprint', ev2.fingerprint as string, '--no-reconnect'])
    t.equal(r.code, 1, 'a client with another token fails (exit 1)')
    await relay2.waitEvent('auth-failed')
    await stop(t, relay2)
  })
})

t.test('a JSON file with the flags\' own spelling starts the relay, and a flag overrides the file', async t => {
  const dir = tmpDir()
  const config = write(dir, 'relay.json', JSON.stringify({
    host: '127.0.0.1',
    port: 0,
    'bind-host': '127.0.0.1',
    'public-host': 'relay.example.test',
    ports: '42000-42099',
    'data-dir': path.join(dir, 'data'),
    json: true,
    'lease-grace': 5,
  }, null, 2))
  const a = spawnBin('mport-relay', ['--config', config])
  t.teardown(() => a.kill())
  const evA = await a.waitEvent('listening')
  t.match(evA, { address: '127.0.0.1', publicHost: 'relay.example.test', ports: '42000-42099' }, 'the JSON file\'s host and port range')
  await stop(t, a)

  const b = spawnBin('mport-relay', ['--config', config, '--ports', '42100-42199', '--public-host', '127.0.0.1'])
  t.teardown(() => b.kill())
  const evB = await b.waitEvent('listening')
  t.match(evB, { address: '127.0.0.1', publicHost: '127.0.0.1', ports: '42100-42199' }, '--ports and --public-host win over the file; the rest still comes from it')
  await stop(t, b)
})

t.test('bad config files: exit 2, one line naming the key', async t => {
  const dir = tmpDir()
  const secret = 'mpt_never-printed-in-errors'
  const tokenFile = write(dir, 'tok', secret)
  const cases: Array<{ name: string, file: string, re: RegExp, print?: boolean }> = [
    { name: 'unknown YAML key', file: write(dir, 'a.yaml', 'data_dri: /tmp/x\n'), re: /unknown key "data_dri" in .*a\.yaml; did you mean "data_dir"\?/ },
    { name: 'unknown JSON key', file: write(dir, 'b.json', '{"prots": "1-2"}'), re: /unknown key "prots" in .*b\.json; did you mean "ports"\?/ },
    { name: 'unknown key far from any', file: write(dir, 'c.yaml', 'colour: blue\n'), re: /unknown key "colour" .*known keys: host, port, /, print: true },
    { name: 'wrong type', file: write(dir, 'd.yaml', 'port: "4443x"\n'), re: /"port" in .*d\.yaml must be a number, not "4443x"/ },
    { name: 'boolean as a word', file: write(dir, 'e.json', '{"open_signup": "yes"}'), re: /"open_signup" in .*e\.json must be true or false/, print: true },
    { name: 'same setting twice', file: write(dir, 'f.yaml', 'data_dir: /a\ndata-dir: /b\n'), re: /"data_dir" and "data-dir" .* are the same setting/ },
    { name: 'token and token_file', file: write(dir, 'g.yaml', `token: x\ntoken_file: ${tokenFile}\n`), re: /give only one of "token", "token_file"/ },
    { name: 'missing token_file', file: write(dir, 'h.yaml', `token_file: ${path.join(dir, 'none')}\n`), re: /cannot read "token_file" .*none in .*: ENOENT/, print: true },
    { name: 'unset token_env', file: write(dir, 'i.yaml', 'token_env: MPORT_TEST_UNSET_TOKEN\n'), re: /"token_env" in .* names MPORT_TEST_UNSET_TOKEN, which is not set/ },
    { name: 'a port out of range in the file', file: write(dir, 'j.yaml', 'port: 70000\n'), re: /--port 70000 is not a port number \(0-65535\) \(from "port" in .*j\.yaml\)/ },
    { name: 'YAML syntax', file: write(dir, 'k.yaml', 'port: [1\n'), re: /YAML syntax error/ },
    { name: 'missing file', file: path.join(dir, 'none.yaml'), re: /cannot read config file: no such file/ },
  ]
  for (const c of cases) {
    const r = await runBin('mport-relay', c.print === true ? ['config', 'print', '--config', c.file] : ['--config', c.file, '--data-dir', path.join(dir, 'data')])
    t.equal(r.code, 2, `${c.name}: exit 2`)
    oneStderrLine(t, r.stderr, c.re, c.name)
    t.equal(r.stdout, '', `${c.name}: nothing on stdout`)
    t.notOk(r.proc.output.includes(secret), `${c.name}: no secret in the output`)
  }
})

t.test('mport-relay config print: the effective config, secrets as ***', async t => {
  const dir = tmpDir()
  const token = 'mpt_printed-never-0123456789'
  const password = 'pg-pass-never-printed'
  const tokenFile = write(dir, 'tok', `${token}\n`)
  const dbFile = write(dir, 'db', `postgres://mport:${password}@db.internal:5432/mport\n`)
  const config = write(dir, 'relay.yaml', [
    'port: 4443',
    'ports: 43000-43999',
    `token_file: ${JSON.stringify(tokenFile)}`,
    `database_file: ${JSON.stringify(dbFile)}`,
    'plan_tunnels: 3',
    '',
  ].join('\n'))
  const y = await runBin('mport-relay', ['config', 'print', '--config', config, '--plan-tunnels', '5'])
  t.equal(y.code, 0, 'exit 0')
  t.equal(y.stderr, '', 'nothing on stderr')
  const lines = y.stdout.trim().split('\n')
  t.ok(lines.every(l => /^[a-z_]+: \S/.test(l)), 'YAML: one "key: value" line per setting')
  t.ok(lines.includes('token: "***"'), 'the token is ***')
  t.ok(lines.includes('database: "postgres://mport:***@db.internal:5432/mport"'), 'the database URL\'s password is ***')
  t.ok(lines.includes('port: 4443') && lines.includes('ports: "43000-43999"'), 'values from the file')
  t.ok(lines.includes('plan_tunnels: 5'), 'the flag overrides the file')
  t.ok(lines.includes('host: "0.0.0.0"') && lines.includes('lease_grace: 120'), 'defaults are shown too')
  t.notOk(y.stdout.includes(token) || y.stdout.includes(password), 'no secret in the YAML')

  // The printed YAML is itself a valid config file.
  const again = write(dir, 'printed.yaml', y.stdout.replace('token: "***"\n', '').replace(/^database: .*\n/m, ''))
  const j = await runBin('mport-relay', ['config', 'print', '--config', again, '--json'], { env: { MPORT_TOKEN: token, MPORT_DATABASE: `postgres://u:${password}@h/db` } })
  t.equal(j.code, 0, '--json: exit 0')
  const o = JSON.parse(j.stdout) as Record<string, unknown>
  t.match(o, { port: 4443, ports: '43000-43999', plan_tunnels: 5, token: '***', database: 'postgres://u:***@h/db', json: true }, 'JSON output from the printed file; secrets from the environment masked too')
  t.notOk(j.stdout.includes(token) || j.stdout.includes(password), 'no secret in the JSON')

  const env = await runBin('mport-relay', ['config', 'print', '--config', write(dir, 'env.json', '{"token_env": "RELAY_SECRET", "database": "mport.db"}'), '--json'], { env: { RELAY_SECRET: token } })
  t.equal(env.code, 0, 'token_env: exit 0')
  t.match(JSON.parse(env.stdout), { token: '***', database: 'mport.db' }, 'token_env gives a token (masked); a SQLite file name is shown as it is')
  t.notOk(env.stdout.includes(token), 'not the token itself')

  const none = await runBin('mport-relay', ['config', 'print', '--json'])
  t.equal(none.code, 0, 'without --config: exit 0')
  t.notOk('token' in (JSON.parse(none.stdout) as object), 'no token given: none shown (the relay generates one)')
})

t.test('--help names --config, its key spelling and config print', async t => {
  const r = await runBin('mport-relay', ['--help'])
  t.equal(r.code, 0)
  const flat = r.stdout.replace(/\s+/g, ' ')
  for (const s of ['--config', 'snake_case', 'token_file', 'config print', '2 bad flags or config']) t.ok(flat.includes(s), `--help mentions ${s}`)
})
