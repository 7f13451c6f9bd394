/**
 * The published package works: `npm pack` (which runs `prepare`, the build), install the
 * tarball into a fresh project, and run both bins through npx. Needs the registry for the
 * dependencies; each step is bounded and the whole test has a generous budget.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t, { type Test } from 'tap'
import { REPO_ROOT } from './helpers/spawn.js'

t.setTimeout(300_000)

const VERSION = (JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version
const children = new Set<ChildProcess>()
const tmp = mkdtempSync(path.join(os.tmpdir(), 'mport-pack-'))

t.teardown(() => {
  for (const c of children) c.kill('SIGKILL')
  rmSync(tmp, { recursive: true, force: true })
})

/** npm's own variables from the tap run would leak the repo's package into the child npm. */
function npmEnv (): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(npm_lifecycle_|npm_package_|npm_command$|npm_config_prefix$|INIT_CWD$|MPORT_|TAP|_TAPJS|NODE_OPTIONS$)/.test(k)) continue
    env[k] = v
  }
  return { ...env, NO_COLOR: '1', npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' }
}

interface Result { code: number | null, stdout: string, stderr: string }

/** Runs a command to its end; on timeout kills it and rejects with what it printed. */
function run (cmd: string, args: string[], cwd: string, timeoutMs: number): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env: npmEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
    children.add(child)
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (s: string) => { stdout += s })
    child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s })
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`timed out after ${timeoutMs} ms waiting for \`${cmd} ${args.join(' ')}\` in ${cwd}\n--- stdout ---\n${stdout}--- stderr ---\n${stderr}`))
    }, timeoutMs)
    child.once('error', err => { clearTimeout(timer); children.delete(child); reject(err) })
    child.once('close', code => { clearTimeout(timer); children.delete(child); resolve({ code, stdout, stderr }) })
  })
}

function ok (tt: Test, r: Result, what: string): void {
  tt.equal(r.code, 0, `${what} exits 0${r.code === 0 ? '' : `\n--- stdout ---\n${r.stdout}--- stderr ---\n${r.stderr}`}`)
}

t.test('npm pack, install the tarball into a fresh project, run both bins', async t => {
  const packDir = path.join(tmp, 'pack')
  const project = path.join(tmp, 'project')
  mkdirSync(packDir)
  mkdirSync(project)

  const pack = await run('npm', ['pack', '--pack-destination', packDir], REPO_ROOT, 150_000)
  ok(t, pack, 'npm pack (with the prepare build)')
  const tarballs = readdirSync(packDir).filter(f => f.endsWith('.tgz'))
  t.same(tarballs, [`mport-${VERSION}.tgz`], 'one tarball named after the version')
  const tarball = path.join(packDir, tarballs[0] ?? 'missing.tgz')

  ok(t, await run('npm', ['init', '-y'], project, 60_000), 'npm init -y')
  ok(t, await run('npm', ['install', tarball], project, 180_000), 'npm install <tarball>')

  const installed = path.join(project, 'node_modules', 'mport')
  for (const f of ['package.json', 'dist/bin/mport-relay.js', 'dist/bin/mport-connect.js', 'dist/src/index.js', 'dist/src/index.d.ts', 'README.md', 'PROTOCOL.md']) {
    t.ok(existsSync(path.join(installed, f)), `the package has ${f}`)
  }
  for (const f of ['test', 'bench', 'bin', 'src', 'tsconfig.json']) {
    t.notOk(existsSync(path.join(installed, f)), `the package leaves out ${f}`)
  }

  const [relayHelp, connectHelp, relayVersion] = await Promise.all([
    run('npx', ['--no-install', 'mport-relay', '--help'], project, 60_000),
    run('npx', ['--no-install', 'mport-connect', '--help'], project, 60_000),
    run('npx', ['--no-install', 'mport-relay', '--version'], project, 60_000),
  ])
  ok(t, relayHelp, 'npx mport-relay --help')
  t.match(relayHelp.stdout, /mport-relay \[options\]/, 'relay usage text')
  t.match(relayHelp.stdout, /--ports/)
  ok(t, connectHelp, 'npx mport-connect --help')
  t.match(connectHelp.stdout, /mport-connect \[http\|tls\] <tunnel\.\.> \[options\]/, 'connect usage text')
  t.match(connectHelp.stdout, /--relay/)
  ok(t, relayVersion, 'npx mport-relay --version')
  t.equal(relayVersion.stdout.trim(), VERSION, 'the built bin finds the package version')

  const lib = await run(process.execPath, ['--input-type=module', '-e', "import { Relay, Client, Session } from 'mport'; console.log(typeof Relay, typeof Client, typeof Session)"], project, 60_000)
  ok(t, lib, 'import from "mport"')
  t.equal(lib.stdout.trim(), 'function function function', 'the library entry point exports Relay, Client and Session')
})
