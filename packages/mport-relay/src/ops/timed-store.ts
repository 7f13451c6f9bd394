/**
 * Store latency without touching a query: the service hands everyone a view of its store
 * whose methods time each call into `mport_store_operation_duration_seconds{operation}`.
 * Only methods that return a promise are timed (every store call does); the label is the
 * method's name, a fixed set.
 */
import { performance } from 'node:perf_hooks'
import type { Histogram } from 'prom-client'

/** `store` with each promise-returning method timed into `histogram` under its name. */
export function timedStore<S extends object> (store: S, histogram: Histogram<'operation'>): S {
  const wrapped = new Map<PropertyKey, unknown>()
  return new Proxy(store, {
    get (target, prop) {
      // The target as receiver: the store's getters and methods use its #private fields.
      const value: unknown = Reflect.get(target, prop, target)
      if (typeof value !== 'function' || typeof prop !== 'string') return value
      let fn = wrapped.get(prop)
      if (fn === undefined) {
        const method = value as (...args: unknown[]) => unknown
        fn = (...args: unknown[]): unknown => {
          const started = performance.now()
          const result = method.apply(target, args)
          if (!(result instanceof Promise)) return result
          const observe = (): void => histogram.observe({ operation: prop }, (performance.now() - started) / 1000)
          return result.finally(observe)
        }
        wrapped.set(prop, fn)
      }
      return fn
    },
  })
}
