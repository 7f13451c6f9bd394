/**
 * The image's build steps, run on this machine (no Docker engine runs here): the build context
 * as .dockerignore leaves it goes through the Dockerfile's build stage, its COPY and RUN steps
 * carried out in order (the RUNs are deploy/docker/build-rootfs.sh's deps and tree steps), into
 * a temp dir. Then the runtime tree is checked (no dev
 * dependencies, no sources, no tests; its size printed and bounded) and started the way the
 * image starts it (test/deploy/image-sandbox.sh: the tree over this Debian 12 + Node 20 as
 * over node:20-bookworm-slim, runtime-setup.sh, the Dockerfile's USER, WORKDIR, ENV,
 * ENTRYPOINT and CMD, its own network namespace), and the Dockerfile's HEALTHCHECK command
 * itself is run against it. SIGTERM to PID 1 (tini) lets the relay drain and exit 0.
 *
 * Needs root (mount and network namespaces), tini, util-linux and the npm registry or cache for
 * `npm ci`; .ci/run installs tini. Under CI a missing tool fails the test; locally it skips.
 */
import { spawn, spawnSync } from 'node:child_process'
import { copyFileSync, cpSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { REPO_ROOT, spawnBin, tmpDir, cleanup, type BinProcess } from '../helpers/spawn.js'
import { parseDockerfile, instructions, last } from './dockerfile.js'
import { dockerIgnored } from './dockerignore.js'

t.setTimeout(1_200_000)
t.teardown(cleanup)

/** The runtime tree must stay under this (bytes on disk of /opt/mport). */
const MAX_RUNTIME_BYTES = 70 * 1024 * 1024
/** The base image's PATH (node:20-bookworm-slim). */
const BASE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
const SANDBOX = path.join(REPO_ROOT, 'test/deploy/image-sandbox.sh')
const RUNTIME_SETUP = path.join(REPO_ROOT, 'deploy/docker/runtime-setup.sh')

function missingTools (): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (mount and network namespaces)'
  for (const tool of ['unshare', 'nsenter', 'chroot', 'tini', 'useradd', 'ip']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is missing (apt-get install tini util-linux iproute2 passwd)`
  }
  return undefined
}

const missing = missingTools()
if (missing !== undefined && process.env.CI === 'true') t.fail(`the image test cannot run: ${missing}`)

/** The environment for npm and the build: the tap run's npm_* and tsx variables would leak in. */
function buildEnv (): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(npm_|NPM_|INIT_CWD$|MPORT_|TAP|_TAPJS|NODE_OPTIONS$|NODE_V8_COVERAGE$)/.test(k)) continue
    env[k] = v
  }
  return { ...env, npm_config_fund: 'false', npm_config_audit: 'false', npm_config_update_notifier: 'false' }
}

/** Runs a command to its end (bounded), failing with its output. */
function run (file: string, args: string[], opts: { cwd?: string, env?: NodeJS.ProcessEnv, input?: string, timeoutMs: number }): Promise<{ code: number | null, output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd: opts.cwd ?? REPO_ROOT, env: opts.env ?? buildEnv(), stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] })
    if (opts.input !== undefined) child.stdin!.end(opts.input)
    let output = ''
    child.stdout!.setEncoding('utf8').on('data', (s: string) => { output += s })
    child.stderr!.setEncoding('utf8').on('data', (s: string) => { output += s })
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`timed out after ${opts.timeoutMs} ms: ${file} ${args.join(' ')}\n${output}`))
    }, opts.timeoutMs)
    child.once('error', err => { clearTimeout(timer); reject(err) })
    child.once('close', code => { clearTimeout(timer); resolve({ code, output }) })
  })
}

/** The build context `docker build .` would send: the repository's files less .dockerignore's. */
function copyContext (dest: string): number {
  const ignore = readFileSync(path.join(REPO_ROOT, '.dockerignore'), 'utf8')
  const listed = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: REPO_ROOT, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
  if (listed.status !== 0) throw new Error(`git ls-files failed: ${listed.stderr}`)
  let copied = 0
  for (const file of listed.stdout.split('\0').filter(Boolean)) {
    const from = path.join(REPO_ROOT, file)
    if (dockerIgnored(ignore, file) || !existsSync(from) || !lstatSync(from).isFile()) continue
    mkdirSync(path.dirname(path.join(dest, file)), { recursive: true })
    copyFileSync(from, path.join(dest, file))
    copied++
  }
  return copied
}

/** Every file under a folder (relative paths), not following symbolic links. */
function filesUnder (dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter(e => e.isFile()).map(e => path.relative(dir, path.join(e.parentPath, e.name)))
}

/** Package folders under node_modules (nested ones too), as lockfile keys (`node_modules/a/node_modules/b`). */
function installedPackages (app: string): string[] {
  const found: string[] = []
  const walk = (rel: string): void => {
    const abs = path.join(app, rel)
    if (!existsSync(abs)) return
    for (const e of readdirSync(abs, { withFileTypes: true })) {
      if (e.name.startsWith('.')) continue
      if (e.name.startsWith('@') && e.isDirectory()) {
        for (const s of readdirSync(path.join(abs, e.name))) visit(`${rel}/${e.name}/${s}`)
      } else visit(`${rel}/${e.name}`)
    }
  }
  const visit = (rel: string): void => {
    found.push(rel)
    walk(`${rel}/node_modules`)
  }
  walk('node_modules')
  return found
}

t.test('the image, built by its own scripts and started as the Dockerfile says', { skip: missing }, async t => {
  const work = tmpDir('mport-image-')
  const context = path.join(work, 'context') // what `docker build .` sends
  const build = path.join(work, 'build') // its filesystem: the stage's WORKDIR and /rootfs
  const rootfs = path.join(work, 'rootfs')
  const files = copyContext(context)
  t.ok(existsSync(path.join(context, 'package-lock.json')) && !existsSync(path.join(context, 'node_modules')), `build context: ${files} files, no node_modules`)

  // The Dockerfile's build stage, step by step: its COPYs from the context into the stage's
  // WORKDIR (so npm ci runs with only the manifests there, as in the image), its RUNs with
  // the stage's absolute paths mapped to the temp dirs.
  const stage = parseDockerfile(path.join(REPO_ROOT, 'Dockerfile')).stages[0]!
  const workdir = last(stage, 'WORKDIR')!.text
  const mapped = (p: string): string => p === '/rootfs' ? rootfs : p === workdir ? build : p.startsWith(`${workdir}/`) ? path.join(build, p.slice(workdir.length)) : p
  for (const ins of stage.instructions) {
    if (ins.keyword === 'WORKDIR') mkdirSync(build, { recursive: true })
    else if (ins.keyword === 'COPY') {
      const sources = ins.text.split(/\s+/)
      const target = sources.pop()!
      const dest = path.join(build, target)
      for (const src of sources) {
        if (src === '.') cpSync(context, dest, { recursive: true })
        else if (target.endsWith('/')) {
          mkdirSync(dest, { recursive: true })
          copyFileSync(path.join(context, src), path.join(dest, path.basename(src)))
        } else {
          mkdirSync(path.dirname(dest), { recursive: true })
          copyFileSync(path.join(context, src), dest)
        }
      }
    } else if (ins.keyword === 'RUN') {
      const [file, ...args] = ins.text.split(/\s+/).map(a => a.startsWith('/') ? mapped(a) : a)
      const r = await run(file!, args, { cwd: build, timeoutMs: 900_000 })
      if (r.code !== 0) throw new Error(`RUN ${ins.text} (line ${ins.line}) exited ${r.code}:\n${r.output}`)
      t.pass(`RUN ${ins.text}`)
    } else throw new Error(`the build stage has ${ins.keyword} (line ${ins.line}), which this test does not carry out`)
  }

  const app = path.join(rootfs, 'opt/mport')

  await t.test('the runtime tree: production dependencies only, no sources, no tests, small', async t => {
    const lock = JSON.parse(readFileSync(path.join(app, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean, link?: boolean }> }
    const installed = installedPackages(app)
    const dev = installed.filter(p => lock.packages[p]?.dev === true)
    const unknown = installed.filter(p => lock.packages[p] === undefined)
    t.same(dev, [], 'no package the lockfile marks as a dev dependency')
    t.same(unknown, [], 'every installed package is in the lockfile (no drift from it)')
    // The workspace's devDependencies, less any a shipped package also depends on (ws, say).
    const manifest = (file: string): { dependencies?: Record<string, string>, devDependencies?: Record<string, string> } => JSON.parse(readFileSync(file, 'utf8')) as never
    const shipped = new Set(['mport', 'mport-relay'].flatMap(p => Object.keys(manifest(path.join(app, 'packages', p, 'package.json')).dependencies ?? {})))
    const devOnly = Object.keys(manifest(path.join(app, 'package.json')).devDependencies ?? {}).filter(d => !shipped.has(d))
    t.ok(devOnly.includes('tap') && devOnly.includes('typescript'), 'the workspace has dev-only dependencies to look for')
    t.same(devOnly.filter(d => existsSync(path.join(app, 'node_modules', d))), [], `none of the workspace's ${devOnly.length} dev-only dependencies (tap, typescript, eslint…)`)
    for (const p of ['fastify', 'kysely', 'libsql', 'pg', 'yargs']) t.ok(installed.includes(`node_modules/${p}`), `the relay's ${p}`)
    t.notOk(existsSync(path.join(app, 'node_modules/mport-connect')) || existsSync(path.join(app, 'packages/mport-connect')), 'no client package')

    for (const pkg of ['mport', 'mport-relay']) {
      const dir = path.join(app, 'packages', pkg)
      t.ok(existsSync(path.join(dir, 'dist/index.js')), `${pkg}: its build`)
      if (pkg === 'mport-relay') t.ok(existsSync(path.join(dir, 'dist/dl/mport-connect.mjs')) && existsSync(path.join(dir, 'dist/dl/mport-connect.cjs')), 'mport-relay: the client bundles it hands out (GET /dl/…)')
      for (const f of ['src', 'test', 'bench', 'tsconfig.json', 'tsconfig.build.json']) t.notOk(existsSync(path.join(dir, f)), `${pkg}: no ${f}`)
    }
    const all = filesUnder(rootfs)
    t.same(all.filter(f => f.endsWith('.ts') && !f.endsWith('.d.ts')), [], 'no TypeScript sources anywhere in the tree')
    t.same(all.filter(f => f.endsWith('.map')), [], 'no source maps')
    t.same(all.filter(f => /(^|\/)(test|tests|__tests__)\//.test(f) || /\.test\.[cm]?js$/.test(f)), [], 'no test folders or test files')
    t.same(all.filter(f => f.startsWith('opt/mport/packages/') && !/^opt\/mport\/packages\/(mport|mport-relay)\//.test(f)), [], 'only the two packages the relay runs')

    const bytes = all.reduce((n, f) => n + statSync(path.join(rootfs, f)).size, 0)
    t.comment(`runtime tree: ${(bytes / 1024 / 1024).toFixed(1)} MiB in ${all.length} files, ${installed.length} packages`)
    t.ok(bytes < MAX_RUNTIME_BYTES, `under ${MAX_RUNTIME_BYTES / 1024 / 1024} MiB (${(bytes / 1024 / 1024).toFixed(1)} MiB)`)
    t.equal(readFileSync(path.join(rootfs, 'etc/mport/relay.yaml'), 'utf8'), readFileSync(path.join(REPO_ROOT, 'deploy/docker/relay.yaml'), 'utf8'), 'the default config in /etc/mport')
  })

  await t.test('started as the image starts it, healthy, then drained by SIGTERM to tini', async t => {
    const runtime = parseDockerfile(path.join(REPO_ROOT, 'Dockerfile')).stages.at(-1)!
    const user = last(runtime, 'USER')!.text
    const workdir = last(runtime, 'WORKDIR')!.text
    const entrypoint = last(runtime, 'ENTRYPOINT')!.exec!
    const cmd = last(runtime, 'CMD')!.exec!
    const healthcheck = last(runtime, 'HEALTHCHECK')!.exec!
    // The image's environment: the base's PATH, HOME from the user's passwd entry, then ENV.
    const env = [`PATH=${BASE_PATH}`, `HOME=${workdir}`, ...instructions(runtime, 'ENV').map(e => e.text)]
    const mountpoint = path.join(work, 'sandbox')
    mkdirSync(mountpoint)

    const relay: BinProcess = spawnBin('mport-relay', cmd, {
      // A PID namespace too, so tini is PID 1 as in a container (unshare forks for it and waits).
      command: { file: 'unshare', args: ['-m', '-n', '-p', '--fork', '--kill-child', 'sh', SANDBOX, mountpoint, rootfs, RUNTIME_SETUP, user, workdir, '--', ...env, ...entrypoint, ...cmd], cwd: work, env: { PATH: process.env.PATH ?? BASE_PATH } },
    })
    const listening = await relay.waitEvent('listening', () => true, 60_000)
    t.match(listening, { port: 7835, dataDir: '/data', fingerprint: /^sha256:[0-9a-f]{64}$/ }, 'the relay listens on the image\'s config (port 7835, data in /data)')
    // PID 1 of the sandbox: the one child unshare forked (sh, which became tini by exec).
    const children = readFileSync(`/proc/${relay.child.pid!}/task/${relay.child.pid!}/children`, 'utf8').trim().split(/\s+/)
    t.equal(children.length, 1, 'unshare has one child: the sandbox\'s PID 1')
    const pid = Number(children[0])
    t.match(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0'), ['/usr/bin/tini', '--', 'node'], 'PID 1 is tini, running node')

    // The healthcheck as Docker runs it: in the container's namespaces and root, as its user.
    const [uid, gid] = user.split(':')
    const inContainer = (args: string[], input?: string): Promise<{ code: number | null, output: string }> =>
      run('nsenter', ['-t', String(pid), '-m', '-n', '-p', '-r', '-w', '-S', uid!, '-G', gid!, '--', 'env', '-i', ...env, ...args], { timeoutMs: 60_000, ...(input !== undefined ? { input } : {}) })
    const health = await inContainer(healthcheck)
    t.equal(health.code, 0, `HEALTHCHECK ${healthcheck.join(' ')} passes${health.output ? `: ${health.output}` : ''}`)
    const ready = await inContainer(['node', '-e', "fetch('http://127.0.0.1:7837/readyz').then(async r => { console.log(r.status); process.exit(r.ok ? 0 : 1) })"])
    t.equal(ready.code, 0, `/readyz answers 200 (${ready.output.trim()})`)

    // `docker exec … mport-relay users add` as DEPLOYMENT.md says: the command on the image's PATH.
    const added = await inContainer(['mport-relay', 'users', 'add', 'alice', '--data-dir', '/data', '--password-stdin'], 'a long enough password for alice\n')
    t.equal(added.code, 0, `mport-relay users add (the /usr/local/bin link) works in the image${added.code === 0 ? '' : `:\n${added.output}`}`)
    const listed = await inContainer(['mport-relay', 'users', 'list', '--data-dir', '/data', '--json'])
    t.match(listed.output, /"alice"/, 'and the running relay\'s store has the account')

    // What the relay wrote in its volume belongs to the image's user; the token is private.
    const data = `/proc/${pid}/root/data`
    const tokenStat = statSync(path.join(data, 'token'))
    t.equal(`${tokenStat.uid}:${tokenStat.gid}`, user, 'the token file belongs to the image\'s user')
    t.equal(tokenStat.mode & 0o077, 0, 'and only that user can read it')

    // A real client and visitor in the sandbox's network namespace: bytes through a tunnel.
    const token = readFileSync(path.join(data, 'token'), 'utf8').trim()
    const probe = await run('nsenter', ['-t', String(pid), '-n', '--', process.execPath, '--import', 'tsx', 'test/deploy/tunnel-probe.ts', `127.0.0.1:${listening.port as number}`, listening.fingerprint as string, String(256 * 1024)],
      { env: { ...buildEnv(), MPORT_TOKEN: token }, timeoutMs: 180_000 })
    const result = probe.output.split('\n').filter(l => l.startsWith('{')).map(l => JSON.parse(l) as Record<string, unknown>).at(-1)
    t.match(result, { remotePort: Number, sent: 262144, received: 262144, same: true, tokenPrinted: false }, `256 KiB through a tunnel of the image's relay came back intact${result ? '' : `\n${probe.output}`}`)
    const ports = String(/^ports: (\S+)$/m.exec(readFileSync(path.join(rootfs, 'etc/mport/relay.yaml'), 'utf8'))?.[1]).split('-').map(Number)
    t.ok(Number(result?.remotePort) >= ports[0]! && Number(result?.remotePort) <= ports[1]!, `its public port ${result?.remotePort as number} is in the image's range ${ports.join('-')} (EXPOSEd)`)

    process.kill(pid, 'SIGTERM') // as `docker stop` does
    const exit = await relay.waitExit(60_000)
    t.same(exit, { code: 0, signal: null }, 'SIGTERM to tini: the relay stops and PID 1 exits 0')
    const events = relay.jsonLines().map(l => l.event)
    t.ok(events.includes('stopping') && events.includes('stopped'), `the relay drained (events: ${events.join(', ')})`)
  })

  await t.test('the HEALTHCHECK fails when nothing serves (it is not a check that always passes)', async t => {
    const healthcheck = last(parseDockerfile(path.join(REPO_ROOT, 'Dockerfile')).stages.at(-1)!, 'HEALTHCHECK')!.exec!
    const r = await run('unshare', ['-n', 'sh', '-c', 'ip link set lo up && exec "$@"', '-', ...healthcheck], { timeoutMs: 60_000 })
    t.equal(r.code, 1, 'exit 1 in a network namespace where no relay listens')
  })
})
