/**
 * The Dockerfile, read with test/deploy/dockerfile.ts (no Docker engine runs here): two stages
 * on one base, the runtime stage non-root with the uid runtime-setup.sh creates, a HEALTHCHECK
 * on the ops listener's /healthz at the port the image's config gives it, tini as PID 1, every
 * COPY source present in the build context and not dropped by .dockerignore, and the RUN steps
 * being the scripts test/deploy/rootfs.test.ts runs.
 */
import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { parse as parseYaml } from 'yaml'
import { REPO_ROOT } from '../helpers/spawn.js'
import { parseDockerfile, instructions, last } from './dockerfile.js'
import { dockerIgnored } from './dockerignore.js'

const dockerfile = parseDockerfile(path.join(REPO_ROOT, 'Dockerfile'))
const imageConfig = parseYaml(readFileSync(path.join(REPO_ROOT, 'deploy/docker/relay.yaml'), 'utf8')) as Record<string, unknown>
const ignore = readFileSync(path.join(REPO_ROOT, '.dockerignore'), 'utf8')

t.test('multi-stage: a build stage and a runtime stage on the same slim Node 20 base', async t => {
  t.equal(dockerfile.stages.length, 2, 'two stages')
  const [build, runtime] = dockerfile.stages
  t.equal(build!.name, 'build', 'the first stage is named build')
  t.equal(build!.from, runtime!.from, 'both stages use the same base')
  t.match(runtime!.from, /^node:20-bookworm-slim$/, 'node:20-bookworm-slim (Debian 12, as the CI machine)')
  const copyFrom = instructions(runtime!, 'COPY').filter(c => c.flags.from !== undefined)
  t.same(copyFrom.map(c => [c.flags.from, c.text]), [['build', '/rootfs/ /']], 'the runtime stage takes only the built /rootfs from the build stage')
  t.same(instructions(runtime!, 'RUN').filter(r => /npm (ci|install)|tsc/.test(r.text)), [], 'no npm install or build in the runtime stage')
})

t.test('the RUN steps are the scripts the rootfs test runs', async t => {
  const [build, runtime] = dockerfile.stages
  t.same(instructions(build!, 'RUN').map(r => r.text), ['sh deploy/docker/build-rootfs.sh deps /src', 'sh deploy/docker/build-rootfs.sh tree /src /rootfs'], 'the build stage runs build-rootfs.sh\'s two steps and nothing else')
  // The deps step runs before the sources are copied: only what npm ci reads is there yet.
  const depsAt = build!.instructions.findIndex(i => i.keyword === 'RUN')
  const before = build!.instructions.slice(0, depsAt).filter(i => i.keyword === 'COPY').flatMap(c => c.text.split(/\s+/).slice(0, -1))
  t.same(before.sort(), ['deploy/docker/build-rootfs.sh', 'package-lock.json', 'package.json', 'packages/mport-connect/package.json', 'packages/mport-relay/package.json', 'packages/mport/package.json'], 'npm ci sees the manifests and the script only, so its layer is cached')
  const workspaces = (JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { workspaces: string[] }).workspaces
  t.same(workspaces.map(w => `${w}/package.json`).filter(m => !before.includes(m)), [], 'every workspace\'s manifest among them (npm ci checks them against the lockfile)')
  const runs = instructions(runtime!, 'RUN').map(r => r.text)
  t.ok(runs.includes('sh /usr/local/lib/mport/runtime-setup.sh /'), 'the runtime stage runs runtime-setup.sh')
  t.ok(runs.some(r => /apt-get install -y --no-install-recommends tini/.test(r) && /rm -rf \/var\/lib\/apt\/lists/.test(r)), 'tini from Debian, apt lists removed in the same layer')
  for (const script of ['deploy/docker/build-rootfs.sh', 'deploy/docker/runtime-setup.sh']) t.ok(existsSync(path.join(REPO_ROOT, script)), `${script} exists`)
})

t.test('non-root with a fixed uid/gid, the one runtime-setup.sh creates', async t => {
  const runtime = dockerfile.stages[1]!
  const user = last(runtime, 'USER')
  t.ok(user, 'USER is set')
  t.match(user!.text, /^\d+:\d+$/, 'numeric uid:gid (Kubernetes runAsNonRoot can check it)')
  const [uid, gid] = user!.text.split(':').map(Number)
  t.not(uid, 0, 'not root')
  const setup = readFileSync(path.join(REPO_ROOT, 'deploy/docker/runtime-setup.sh'), 'utf8')
  t.match(setup, new RegExp(`^uid=${uid}$`, 'm'), 'runtime-setup.sh creates that uid')
  t.match(setup, new RegExp(`^gid=${gid}$`, 'm'), 'and that gid')
  const userAt = runtime.instructions.indexOf(user!)
  t.same(runtime.instructions.slice(userAt).filter(i => i.keyword === 'RUN'), [], 'nothing runs as root after USER')
})

t.test('HEALTHCHECK: node fetching the ops listener\'s /healthz at the configured port', async t => {
  const hc = last(dockerfile.stages[1]!, 'HEALTHCHECK')
  t.ok(hc, 'HEALTHCHECK present')
  t.equal(hc!.exec?.[0], 'node', 'runs node (the image has no curl)')
  t.equal(hc!.exec?.[1], '-e')
  const url = /fetch\('([^']+)'\)/.exec(hc!.exec?.[2] ?? '')?.[1]
  t.equal(url, `http://127.0.0.1:${imageConfig.ops_port as number}/healthz`, 'the URL is the ops port of the image\'s relay.yaml')
  for (const f of ['interval', 'timeout', 'start-period', 'retries']) t.ok(hc!.flags[f], `--${f} set`)
})

t.test('tini as PID 1 runs the relay with the image\'s config; ports and the volume match that config', async t => {
  const runtime = dockerfile.stages[1]!
  const entry = last(runtime, 'ENTRYPOINT')?.exec
  t.same(entry?.slice(0, 2), ['/usr/bin/tini', '--'], 'tini forwards SIGTERM and reaps')
  t.same(entry?.slice(2), ['node', '/opt/mport/packages/mport-relay/bin/mport-relay.js'], 'then the relay package\'s bin')
  t.same(last(runtime, 'CMD')?.exec, ['--config', '/etc/mport/relay.yaml'], 'CMD names the config, so `docker run IMAGE --help` works')
  t.same(last(runtime, 'VOLUME')?.exec, [imageConfig.data_dir], 'VOLUME is the config\'s data_dir')
  const exposed = last(runtime, 'EXPOSE')!.text.split(/\s+/)
  for (const p of [imageConfig.port, imageConfig.ops_port, 80, 443]) t.ok(exposed.includes(String(p)), `EXPOSE ${p as number}`)
  t.ok(exposed.includes(String(imageConfig.ports)), `EXPOSE the public range ${imageConfig.ports as string}`)
})

t.test('every COPY source is in the build context and not dropped by .dockerignore', async t => {
  for (const stage of dockerfile.stages) {
    for (const copy of instructions(stage, 'COPY')) {
      if (copy.flags.from !== undefined) {
        t.ok(dockerfile.stages.some(s => s.name === copy.flags.from), `COPY --from=${copy.flags.from} names a stage`)
        continue
      }
      const sources = copy.text.split(/\s+/).slice(0, -1)
      for (const src of sources) {
        t.ok(existsSync(path.join(REPO_ROOT, src)), `COPY ${src} exists (line ${copy.line})`)
        if (src !== '.') t.notOk(dockerIgnored(ignore, src), `${src} is not in .dockerignore`)
      }
    }
  }
  for (const needed of ['package.json', 'package-lock.json', 'tsconfig.json', 'src/index.ts', 'packages/mport-relay/package.json', 'deploy/docker/build-rootfs.sh', 'deploy/docker/relay.yaml']) {
    t.notOk(dockerIgnored(ignore, needed), `the build needs ${needed}: it stays in the context`)
  }
  for (const dropped of ['node_modules/tap/package.json', 'packages/mport/dist/index.js', '.git/HEAD', '.mport/token', 'test/fixtures/relay.key']) {
    t.ok(dockerIgnored(ignore, dropped), `${dropped} stays out of the context`)
  }
})
