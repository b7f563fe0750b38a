/**
 * bcrypt verification (`$2a$`, `$2b$`, `$2y$`), as htpasswd `-B` and agentgateway's `keyHash`
 * write it, through bcryptjs. verdict adds the checks a policy load needs: the hash's shape and a
 * bounded cost (each step doubles the work of a synchronous verification).
 */
import bcrypt from 'bcryptjs'

/** A bcrypt hash as written: `$2b$<cost>$<22 salt chars><31 hash chars>`. */
const BCRYPT = /^\$2[aby]\$(\d\d)\$([./A-Za-z0-9]{22})([./A-Za-z0-9]{31})$/

/** Highest cost accepted. */
const MAX_BCRYPT_COST = 14

/** Why `hash` is not a usable bcrypt hash, or undefined when it is. */
export function bcryptProblem(hash: string): string | undefined {
  const m = BCRYPT.exec(hash)
  if (m === null) return 'not a bcrypt hash ($2a$, $2b$ or $2y$, a two-digit cost, 53 characters)'
  const cost = Number(m[1])
  if (cost < 4 || cost > MAX_BCRYPT_COST) return `bcrypt cost ${cost} is outside 4..${MAX_BCRYPT_COST}`
  return undefined
}

/** True when `password` matches `hash`. `hash` must pass `bcryptProblem`. */
export function bcryptVerify(password: string, hash: string): boolean {
  if (!BCRYPT.test(hash)) return false
  return bcrypt.compareSync(password, hash)
}
