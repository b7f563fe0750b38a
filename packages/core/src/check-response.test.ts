import { describe, expect, test } from 'vitest'
import { toCheckResponse } from './check-response.js'
import { deny, loggableReason } from './decision.js'
import { httpStatusFromName, httpStatusName, isValidHttpStatus, VALID_HTTP_STATUSES } from './status.js'

describe('toCheckResponse', () => {
  test('allow: ok_response with headers, removals, response headers, query parameters', () => {
    const res = toCheckResponse({
      allowed: true,
      status: 200,
      code: 'allowed',
      reason: 'allowed by rule a',
      headers: [
        { key: 'x-user', value: 'alice' },
        { key: 'x-tag', value: '2', append: 'append' },
        { key: 'x-once', value: '1', append: 'add_if_absent' },
      ],
      headersToRemove: ['authorization'],
      responseHeadersToAdd: [{ key: 'x-r', value: 'r' }],
      queryParametersToSet: [{ key: 'a', value: 'b' }],
      queryParametersToRemove: ['token'],
      dynamicMetadata: { id: 'd1' },
    })
    expect(res).toEqual({
      status: { code: 0 },
      okResponse: {
        headers: [
          { header: { key: 'x-user', value: 'alice' }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' },
          { header: { key: 'x-tag', value: '2' }, appendAction: 'APPEND_IF_EXISTS_OR_ADD' },
          { header: { key: 'x-once', value: '1' }, appendAction: 'ADD_IF_ABSENT' },
        ],
        headersToRemove: ['authorization'],
        responseHeadersToAdd: [
          { header: { key: 'x-r', value: 'r' }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' },
        ],
        queryParametersToSet: [{ key: 'a', value: 'b' }],
        queryParametersToRemove: ['token'],
      },
      dynamicMetadata: { id: 'd1' },
    })
  })

  test('bare allow has an empty ok_response', () => {
    const res = toCheckResponse({ ...deny(403, 'x'), allowed: true, status: 200 })
    expect(res).toEqual({ status: { code: 0 }, okResponse: {} })
  })

  test('deny: PERMISSION_DENIED with the HTTP status as enum name, headers and body', () => {
    const res = toCheckResponse(
      deny(429, 'slow down', { headers: [{ key: 'retry-after', value: '5' }], body: 'later' }),
    )
    expect(res).toEqual({
      status: { code: 7, message: 'slow down' },
      deniedResponse: {
        status: { code: 'TooManyRequests' },
        headers: [{ header: { key: 'retry-after', value: '5' }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
        body: 'later',
      },
    })
  })

  test('401 is UNAUTHENTICATED', () => {
    expect(toCheckResponse(deny(401, 'no token')).status.code).toBe(16)
    expect(toCheckResponse(deny(401, 'no token')).deniedResponse?.status.code).toBe('Unauthorized')
  })
})

describe('HTTP status list', () => {
  test('only Envoy StatusCode values are valid', () => {
    expect(VALID_HTTP_STATUSES).toHaveLength(56)
    for (const c of [200, 401, 403, 413, 429, 431, 511]) expect(isValidHttpStatus(c)).toBe(true)
    for (const c of [0, 99, 209, 299, 418, 451, 509, 600, '403', 403.5, null])
      expect(isValidHttpStatus(c)).toBe(false)
  })
  test('names round-trip', () => {
    for (const c of VALID_HTTP_STATUSES) expect(httpStatusFromName(httpStatusName(c)!)).toBe(c)
    expect(httpStatusName(418)).toBeUndefined()
  })
})

describe('loggableReason', () => {
  test('leaves out what evaluators and exceptions said, on the wire too', () => {
    const cases: Array<[Parameters<typeof deny>[2], string, string]> = [
      [
        { code: 'evaluator_error' },
        'deny rule d failed: no such key: Bearer abc',
        "deny rule d failed (the evaluator's message is not logged)",
      ],
      [
        { code: 'no_match' },
        'no allow rule matched (failed: a: x; b: y)',
        'no allow rule matched (rules failed; their messages are not logged)',
      ],
      [{ code: 'internal' }, 'internal error: token abc', 'internal error'],
      [{ code: 'internal' }, 'authentication failed internally: abc', 'authentication failed internally'],
      // Reasons the engine writes itself stay as they are.
      [{ code: 'no_match' }, 'no allow rule matched in layer l', 'no allow rule matched in layer l'],
      [{ code: 'denied' }, 'denied by rule d', 'denied by rule d'],
      [
        { code: 'malformed_input' },
        'malformed input: path must start with "/"',
        'malformed input: path must start with "/"',
      ],
    ]
    for (const [options, reason, logged] of cases) {
      const d = deny(403, reason, options)
      expect(loggableReason(d)).toBe(logged)
      expect(toCheckResponse(d).status.message).toBe(logged)
    }
  })
})
