/**
 * The scaled deployments, checked without Docker or Kubernetes (neither runs here):
 * docker-compose.cluster.yml valid against the compose-spec schema and its secret written by
 * make-secrets.sh, deploy/relay.cluster.yaml and the Kubernetes container's arguments accepted
 * by the real relay (`mport-relay config print`), and the manifests wired together (selectors,
 * named ports, the disruption budget below the replicas).
 */
import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { parse as parseYaml, parseAllDocuments } from 'yaml'
import { REPO_ROOT, runBin, tmpDir, cleanup } from '../helpers/spawn.js'
import { composeValidator, describeErrors } from './compose-tools.js'

t.setTimeout(300_000)
t.teardown(cleanup)

const read = (f: string): string => readFileSync(path.join(REPO_ROOT, f), 'utf8')

t.test('docker-compose.cluster.yml: valid, its redis in the cluster profile, its secret made by make-secrets.sh', async t => {
  const doc = parseYaml(read('docker-compose.cluster.yml')) as { services: Record<string, { profiles?: string[], secrets?: string[], volumes?: string[] }>, secrets: Record<string, { file: string }> }
  const { validate } = await composeValidator()
  t.ok(validate(doc), `valid${validate.errors ? `:\n${describeErrors(validate.errors)}` : ''}`)
  t.same(doc.services.redis?.profiles, ['cluster'])
  t.ok(doc.services.relay?.volumes?.includes('./deploy/relay.cluster.yaml:/etc/mport/relay.yaml:ro'), 'the relay mounts the cluster config')
  t.match(read('deploy/docker/make-secrets.sh'), /write cluster_key /, 'make-secrets.sh writes the cluster key')
  t.equal(doc.secrets.cluster_key?.file, './deploy/secrets/cluster_key')
})

t.test('deploy/relay.cluster.yaml is accepted by the relay, secrets masked', async t => {
  const dir = tmpDir('mport-cluster-deploy-')
  for (const [name, value] of [['relay_token', 'mpt_deploy-test-token'], ['database_url', 'postgres://mport:pw-deploy@postgres/mport'], ['cluster_key', 'cluster-key-deploy-test']]) writeFileSync(path.join(dir, name!), `${value}\n`)
  const config = path.join(dir, 'relay.yaml')
  writeFileSync(config, read('deploy/relay.cluster.yaml').replaceAll('/run/secrets/', `${dir}/`).replace(/^data_dir: .*$/m, `data_dir: ${dir}/data`))
  const r = await runBin('mport-relay', ['config', 'print', '--config', config, '--json'])
  t.equal(r.code, 0, r.stderr)
  const shown = JSON.parse(r.stdout) as Record<string, unknown>
  t.equal(shown.workers, 2)
  t.equal(shown.cluster_redis, 'redis://redis:6379')
  t.equal(shown.cluster_key, '***', 'the cluster key is masked')
  t.notOk(r.stdout.includes('cluster-key-deploy-test') || r.stdout.includes('pw-deploy'))
})

t.test('deploy/k8s/mport-relay.yaml: Deployment, Service, PodDisruptionBudget wired together; the args accepted by the relay', async t => {
  const docs = parseAllDocuments(read('deploy/k8s/mport-relay.yaml')).map(d => d.toJS() as K8s)
  const byKind = new Map(docs.map(d => [d.kind, d]))
  t.same([...byKind.keys()].sort(), ['Deployment', 'NetworkPolicy', 'PodDisruptionBudget', 'Service'])
  const deploy = byKind.get('Deployment')!
  const labels = deploy.spec.template.metadata.labels
  for (const kind of ['Service', 'PodDisruptionBudget'] as const) {
    const sel = kind === 'Service' ? byKind.get(kind)!.spec.selector : byKind.get(kind)!.spec.selector.matchLabels
    t.same(sel, labels, `the ${kind} selects the Deployment's pods`)
  }
  t.ok(byKind.get('PodDisruptionBudget')!.spec.minAvailable < deploy.spec.replicas, 'the budget lets one pod go at a time')
  const container = deploy.spec.template.spec.containers[0]!
  const named = new Set(container.ports.map(p => p.name))
  for (const p of byKind.get('Service')!.spec.ports) if (typeof p.targetPort === 'string') t.ok(named.has(p.targetPort), `the Service's ${p.name} port is a container port`)
  // The container's args with the variables Kubernetes fills in, through the real settings check.
  const env = { POD_NAME: 'mport-relay-0', POD_IP: '10.0.0.7', MPORT_PUBLIC_HOST: 'relay.example.com' } as Record<string, string>
  const args = container.args.map(a => a.replace(/\$\((\w+)\)/g, (_, v: string) => env[v] ?? ''))
  const r = await runBin('mport-relay', ['config', 'print', ...args], { env: { MPORT_DATABASE: 'postgres://mport:x@postgres/mport', MPORT_CLUSTER_REDIS: 'redis://redis:6379', MPORT_CLUSTER_KEY: 'k8s-test-key', MPORT_TOKEN: 'mpt_k8s-test-token' } })
  t.equal(r.code, 0, r.stderr)
  const shown = JSON.parse(r.stdout) as Record<string, unknown>
  t.equal(shown.cluster_advertise, '10.0.0.7', 'each pod advertises its own address to the others')
  t.equal(shown.cluster_node, 'mport-relay-0')
  t.notOk(r.stdout.includes('k8s-test-key'), 'the cluster key is masked')
  for (const name of ['database-url', 'redis-url', 'cluster-key', 'token']) {
    t.ok(container.env.some(e => e.valueFrom?.secretKeyRef?.key === name), `${name} comes from the Secret`)
  }
})

interface K8s {
  kind: string
  spec: {
    replicas: number
    minAvailable: number
    selector: Record<string, string> & { matchLabels: Record<string, string> }
    ports: Array<{ name: string, targetPort?: string | number }>
    template: { metadata: { labels: Record<string, string> }, spec: { containers: Array<{ args: string[], ports: Array<{ name: string }>, env: Array<{ name: string, valueFrom?: { secretKeyRef?: { key: string } } }> }> } }
  }
}
