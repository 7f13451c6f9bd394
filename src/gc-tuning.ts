/**
 * `mport/gc-tuning`: opt-in V8 settings for a process whose job is forwarding bytes (the bins
 * call it; an embedding application decides for itself).
 *
 * @packageDocumentation
 */
export { tuneGcForForwarding, FORWARDING_GC_FLAGS, DEFAULT_YOUNG_BUFFER_BUDGET, type ForwardingGc, type ForwardingGcOptions } from './transport/gc-tuning.js'
