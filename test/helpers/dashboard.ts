/**
 * The Grafana dashboard (deploy/grafana/dashboards/mport.json) as tests read it: its panels'
 * PromQL expressions, with Grafana's variables filled in as Prometheus would receive them,
 * and the metric names each one selects.
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { REPO_ROOT } from './spawn.js'

export interface Target { expr: string, refId: string, datasource?: { uid: string } }
export interface Panel { type: string, title: string, datasource?: { type: string, uid: string }, targets?: Target[] }
export interface Dashboard { uid: string, title: string, panels: Panel[], templating: { list: Array<{ name: string }> } }

export const FILE = path.join(REPO_ROOT, 'deploy/grafana/dashboards/mport.json')
/** The data source uid deploy/grafana/provisioning provisions. */
export const DATASOURCE_UID = 'prometheus'

/** Every panel's expressions (rows hold none). */
export function dashboardExprs (d: Dashboard): Array<{ panel: string, expr: string }> {
  return d.panels.filter(p => p.type !== 'row').flatMap(p => (p.targets ?? []).map(x => ({ panel: p.title, expr: x.expr })))
}

/** An expression with Grafana's variables replaced by what Prometheus would receive. */
export function concrete (expr: string): string {
  return expr.replaceAll('$__rate_interval', '1m').replaceAll('$__interval', '1m').replaceAll('$instance', '.+')
}

/** The metric names an expression selects (identifiers not followed by `(` nor inside braces or label lists). */
export function metricNames (expr: string): string[] {
  const stripped = expr.replace(/\{[^}]*\}/g, '{}').replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '').replace(/"[^"]*"/g, '""').replace(/\[[^\]]*\]/g, '')
  return [...stripped.matchAll(/\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()/g)].map(m => m[1]!)
    .filter(n => !['by', 'without', 'on', 'ignoring', 'bool', 'and', 'or', 'unless', 'offset', 'm', 's', 'h', 'd'].includes(n) && !/^\d/.test(n))
}

/** The dashboard, parsed. */
export function loadDashboard (): Dashboard {
  return JSON.parse(readFileSync(FILE, 'utf8')) as Dashboard
}
