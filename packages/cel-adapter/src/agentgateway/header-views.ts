/** Header views: `request.headers.join()`, `.split()`, `.raw()`, `.redacted()`, `.cookie(name)`. */
import { type CelValue, celList } from '@bufbuild/cel'
import { type CheckInput, headerValues } from '@verdict/core/internal'

// Header views (`request.headers.join()`, `.split()`, `.raw()`, `.redacted()`, `.cookie(name)`)

const CEL_MAP = Symbol.for('@bufbuild/cel/map')

/** Headers whose values `redacted()` hides. */
const SENSITIVE = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-api-key'])

type HeaderForm = 'value' | 'split' | 'raw'

/**
 * `request.headers` as a CEL map with agentgateway's view methods. The default (and `join()`) form
 * is the joined value, as `request.headers` always was; `split()` is `request.headerValues`
 * (every value: every line, split on commas, trimmed); `raw()` one entry per field line as far as
 * the input keeps lines apart; `redacted()` hides credentials in any form.
 */
export class HeaderView implements ReadonlyMap<string, CelValue> {
  readonly [CEL_MAP] = true

  constructor(
    readonly input: CheckInput,
    readonly form: HeaderForm = 'value',
    readonly redact = false,
  ) {}

  private value(name: string): CelValue | undefined {
    const input = this.input
    const v = input.headers[name]
    if (v === undefined) return undefined
    if (this.redact && SENSITIVE.has(name)) {
      if (this.form === 'value') return '<redacted>'
      return celList(headerValues(input, name).map(() => '<redacted>'))
    }
    switch (this.form) {
      case 'value':
        return v
      case 'split':
        return celList(headerValues(input, name))
      case 'raw':
        return celList(input.repeatedHeaders.includes(name) ? headerValues(input, name) : [v])
    }
  }

  with(form: HeaderForm | undefined, redact: boolean): HeaderView {
    return new HeaderView(this.input, form ?? this.form, redact || this.redact)
  }

  get size(): number {
    return Object.keys(this.input.headers).length
  }
  get(key: unknown): CelValue | undefined {
    return typeof key === 'string' && Object.hasOwn(this.input.headers, key) ? this.value(key) : undefined
  }
  has(key: unknown): boolean {
    return typeof key === 'string' && Object.hasOwn(this.input.headers, key)
  }
  keys(): MapIterator<string> {
    return Object.keys(this.input.headers).values()
  }
  *values(): MapIterator<CelValue> {
    for (const k of this.keys()) yield this.value(k)!
  }
  *entries(): MapIterator<[string, CelValue]> {
    for (const k of this.keys()) yield [k, this.value(k)!]
  }
  forEach(cb: (value: CelValue, key: string, map: ReadonlyMap<string, CelValue>) => void): void {
    for (const [k, v] of this.entries()) cb(v, k, this)
  }
  [Symbol.iterator](): MapIterator<[string, CelValue]> {
    return this.entries()
  }
}

export function headerView(m: CelValue, method: string): HeaderView {
  if (!(m instanceof HeaderView))
    throw new Error(`no such overload: ${method}() is a method of request.headers`)
  return m
}

export function cookie(m: CelValue, name: string): string {
  const v = headerView(m, 'cookie').input.headers.cookie
  if (v !== undefined) {
    for (const part of v.split(';')) {
      const eq = part.indexOf('=')
      if (eq === -1) continue
      if (part.slice(0, eq).trim() === name) {
        const value = part.slice(eq + 1).trim()
        return value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value
      }
    }
  }
  throw new Error(`no such key: ${name}`)
}
