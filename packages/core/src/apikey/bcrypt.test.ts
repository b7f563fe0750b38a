import { describe, expect, it } from 'vitest'
import { bcryptProblem, bcryptVerify } from './bcrypt.js'

describe('bcrypt hashes (htpasswd -B, agentgateway keyHash)', () => {
  // "wonderland" at cost 5.
  const hash = '$2b$05$aHWw/LVR3yFUAag4l4l/qO6pLc6PmRuapajlRTfMLSWAdz6apjjHO'

  it('verifies the password it was made from, under each prefix, and nothing else', () => {
    expect(bcryptProblem(hash)).toBeUndefined()
    expect(bcryptVerify('wonderland', hash)).toBe(true)
    expect(bcryptVerify('wonderland', hash.replace('$2b$', '$2y$'))).toBe(true)
    expect(bcryptVerify('wonderland', hash.replace('$2b$', '$2a$'))).toBe(true)
    expect(bcryptVerify('Wonderland', hash)).toBe(false)
    expect(bcryptVerify('', hash)).toBe(false)
  })

  it.each([
    ['not bcrypt', 'sha256:abc', /not a bcrypt hash/],
    ['cost too high', hash.replace('$05$', '$15$'), /outside 4..14/],
    ['cost too low', hash.replace('$05$', '$03$'), /outside 4..14/],
  ])('%s is a load problem and never verifies', (_, h, why) => {
    expect(bcryptProblem(h)).toMatch(why)
    if (!h.startsWith('$2')) expect(bcryptVerify('wonderland', h)).toBe(false)
  })
})
