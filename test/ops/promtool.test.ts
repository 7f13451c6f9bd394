/**
 * The alert rules and the Prometheus config in deploy/prometheus, checked by Debian's promtool:
 * `check config` (which also checks the rule file it names), `check rules`, and the rules'
 * unit tests (`test rules alerts.test.yml`), where every alert in alerts.yml must be shown to
 * fire at least once. A broken rule file is shown to fail, so the check is not a no-op.
 */
import { readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { parse } from 'yaml'
import { REPO_ROOT } from '../helpers/spawn.js'
import { promtool, prometheusTestOptions } from '../helpers/prometheus.js'

const DIR = path.join(REPO_ROOT, 'deploy/prometheus')

interface RulesFile { groups: Array<{ rules: Array<{ alert?: string, expr: string }> }> }
interface RulesTests { tests: Array<{ alert_rule_test?: Array<{ alertname: string, exp_alerts: unknown[] }> }> }

t.test('promtool: config, rules and the rules\' unit tests', prometheusTestOptions(), async t => {
  const config = await promtool(['check', 'config', 'prometheus.yml'], DIR)
  t.equal(config.code, 0, `promtool check config:\n${config.output}`)
  t.match(config.output, /SUCCESS: 1 rule files found/, 'the config names the rule file')
  const rules = await promtool(['check', 'rules', 'alerts.yml'], DIR)
  t.equal(rules.code, 0, `promtool check rules:\n${rules.output}`)
  const tests = await promtool(['test', 'rules', 'alerts.test.yml'], DIR)
  t.equal(tests.code, 0, `promtool test rules:\n${tests.output}`)
  t.match(tests.output, /SUCCESS/)

  const alerts = (parse(readFileSync(path.join(DIR, 'alerts.yml'), 'utf8')) as RulesFile).groups.flatMap(g => g.rules).map(r => r.alert).filter((a): a is string => a !== undefined)
  t.same(alerts.filter(a => !/^Mport[A-Za-z]+$/.test(a)), [], 'alert names are MportSomething')
  for (const wanted of ['MportRelayDown', 'MportAuthFailureSpike', 'MportEventLoopLag', 'MportQuotaExhausted', 'MportCertificateExpiringSoon', 'MportStoreUnreachable']) {
    t.ok(alerts.includes(wanted), `${wanted} is defined`)
  }
  const cases = (parse(readFileSync(path.join(DIR, 'alerts.test.yml'), 'utf8')) as RulesTests).tests.flatMap(x => x.alert_rule_test ?? [])
  for (const alert of alerts) {
    t.ok(cases.some(c => c.alertname === alert && c.exp_alerts.length > 0), `${alert} is shown to fire in alerts.test.yml`)
  }
})

t.test('promtool rejects a broken rule and a failing unit test (the checks can fail)', prometheusTestOptions(), async t => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mport-promtool-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await writeFile(path.join(dir, 'bad.yml'), 'groups:\n  - name: x\n    rules:\n      - alert: Broken\n        expr: sum(rate(mport_auth_failures_total[5m]) >\n')
  const bad = await promtool(['check', 'rules', 'bad.yml'], dir)
  t.not(bad.code, 0, 'a rule that does not parse fails the check')
  // The real rules, with a test that expects MportStoreUnreachable on a healthy store.
  await writeFile(path.join(dir, 'alerts.yml'), readFileSync(path.join(DIR, 'alerts.yml')))
  await writeFile(path.join(dir, 'wrong.test.yml'), [
    'rule_files: [alerts.yml]', 'evaluation_interval: 1m', 'tests:', '  - interval: 1m', '    input_series:',
    '      - series: \'mport_store_up{instance="a"}\'', '        values: \'1x10\'', '    alert_rule_test:',
    '      - eval_time: 5m', '        alertname: MportStoreUnreachable', '        exp_alerts: [{ exp_labels: { instance: a, severity: critical } }]', '',
  ].join('\n'))
  const wrong = await promtool(['test', 'rules', 'wrong.test.yml'], dir)
  t.not(wrong.code, 0, 'an alert that does not fire fails its unit test')
  t.match(wrong.output, /MportStoreUnreachable/)
})
