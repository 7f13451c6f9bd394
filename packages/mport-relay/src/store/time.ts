/** A minute in ms: the finest usage bucket. */
export const MINUTE = 60_000
/** An hour in ms: minute rows of a complete hour roll up into one hour row. */
export const HOUR = 3_600_000
/** A UTC day in ms: hour rows past the retention roll up into day rows. */
export const DAY = 86_400_000
