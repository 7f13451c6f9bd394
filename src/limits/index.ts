/** Quota building blocks for the relay: token buckets, bandwidth shaping, connection-rate limits, plan quotas. */
export { TokenBucket, type TokenBucketOptions, type RateListener } from './token-bucket.js'
export { Throttle, type ThrottleOptions } from './throttle.js'
export { ConnectionRateLimiter, type ConnectionRateLimiterOptions, type RateVerdict } from './rate-limiter.js'
export { QuotaGate, quotaError, type QuotaGateOptions, type QuotaLimits, type QuotaLimitName, type QuotaUsage, type QuotaVerdict } from './quota.js'
