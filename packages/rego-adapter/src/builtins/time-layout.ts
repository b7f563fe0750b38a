/** Go's time layouts (`2006-01-02T15:04:05Z07:00`): formatting and parsing, as Go's time package. */

export const NS_PER_MS = 1_000_000n

export const MONTHS = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
]
export const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday']

/** Layout names `time.format` and `time.parse_ns` accept (OPA's list: Go's constants up to RFC3339Nano). */
export const NAMED_LAYOUTS: Record<string, string> = {
  ANSIC: 'Mon Jan _2 15:04:05 2006',
  UnixDate: 'Mon Jan _2 15:04:05 MST 2006',
  RubyDate: 'Mon Jan 02 15:04:05 -0700 2006',
  RFC822: '02 Jan 06 15:04 MST',
  RFC822Z: '02 Jan 06 15:04 -0700',
  RFC850: 'Monday, 02-Jan-06 15:04:05 MST',
  RFC1123: 'Mon, 02 Jan 2006 15:04:05 MST',
  RFC1123Z: 'Mon, 02 Jan 2006 15:04:05 -0700',
  RFC3339: '2006-01-02T15:04:05Z07:00',
  RFC3339Nano: '2006-01-02T15:04:05.999999999Z07:00',
}

/** Broken-down time in a zone. */
export interface Fields {
  year: number
  month: number // 1-12
  day: number
  hour: number
  minute: number
  second: number
  nanos: number
  weekday: number // 0 = Sunday
  yday: number // 1-366
  offset: number // seconds east of UTC
  readonly abbr: string
}

const STD = [
  'January',
  'Jan',
  'Monday',
  'Mon',
  'MST',
  'Z07:00:00',
  'Z070000',
  'Z07:00',
  'Z0700',
  'Z07',
  '-07:00:00',
  '-070000',
  '-07:00',
  '-0700',
  '-07',
  '2006',
  '002',
  '__2',
  '_2',
  '01',
  '02',
  '03',
  '04',
  '05',
  '06',
  '15',
  'PM',
  'pm',
  '1',
  '2',
  '3',
  '4',
  '5',
]

/** Split a Go layout into literal text and std tokens (`{ std }`). */
function chunks(layout: string): Array<string | { std: string }> {
  const out: Array<string | { std: string }> = []
  let lit = ''
  let i = 0
  while (i < layout.length) {
    let tok: string | undefined
    const frac = /^[.,](0+|9+)(?![0-9])/.exec(layout.slice(i))
    if (frac !== null) tok = frac[0]
    else if (layout.startsWith('_2006', i)) {
      lit += '_'
      i++
      continue
    } else tok = STD.find((s) => layout.startsWith(s, i))
    if (tok === undefined) {
      lit += layout[i]
      i++
      continue
    }
    if (lit !== '') out.push(lit)
    lit = ''
    out.push({ std: tok })
    i += tok.length
  }
  if (lit !== '') out.push(lit)
  return out
}

export function fmtOffset(off: number, std: string, z: boolean): string {
  if (z && off === 0) return 'Z'
  const sign = off < 0 ? '-' : '+'
  const a = Math.abs(off)
  const hh = String(Math.floor(a / 3600)).padStart(2, '0')
  const mm = String(Math.floor((a % 3600) / 60)).padStart(2, '0')
  const ss = String(a % 60).padStart(2, '0')
  const s = std.replace(/^[Z-]/, '')
  if (s === '07') return sign + hh
  if (s === '0700') return sign + hh + mm
  if (s === '07:00') return `${sign}${hh}:${mm}`
  if (s === '070000') return sign + hh + mm + ss
  return `${sign}${hh}:${mm}:${ss}`
}

export function format(f: Fields, layout: string): string {
  const p2 = (n: number) => String(n).padStart(2, '0')
  let out = ''
  for (const c of chunks(layout)) {
    if (typeof c === 'string') {
      out += c
      continue
    }
    const s = c.std
    const h12 = f.hour % 12 === 0 ? 12 : f.hour % 12
    if (s[0] === '.' || s[0] === ',') {
      const digits = String(f.nanos)
        .padStart(9, '0')
        .slice(0, s.length - 1)
      if (s[1] === '0') out += s[0] + digits
      else {
        const t = digits.replace(/0+$/, '')
        if (t !== '') out += s[0] + t
      }
      continue
    }
    switch (s) {
      case 'January':
        out += MONTHS[f.month - 1]
        break
      case 'Jan':
        out += MONTHS[f.month - 1]!.slice(0, 3)
        break
      case 'Monday':
        out += DAYS[f.weekday]
        break
      case 'Mon':
        out += DAYS[f.weekday]!.slice(0, 3)
        break
      case 'MST':
        out += f.abbr
        break
      case '2006':
        out += f.year < 0 ? `-${String(-f.year).padStart(4, '0')}` : String(f.year).padStart(4, '0')
        break
      case '06':
        out += p2(((f.year % 100) + 100) % 100)
        break
      case '002':
        out += String(f.yday).padStart(3, '0')
        break
      case '__2':
        out += String(f.yday).padStart(3, ' ')
        break
      case '_2':
        out += String(f.day).padStart(2, ' ')
        break
      case '01':
        out += p2(f.month)
        break
      case '1':
        out += f.month
        break
      case '02':
        out += p2(f.day)
        break
      case '2':
        out += f.day
        break
      case '15':
        out += p2(f.hour)
        break
      case '03':
        out += p2(h12)
        break
      case '3':
        out += h12
        break
      case '04':
        out += p2(f.minute)
        break
      case '4':
        out += f.minute
        break
      case '05':
        out += p2(f.second)
        break
      case '5':
        out += f.second
        break
      case 'PM':
        out += f.hour >= 12 ? 'PM' : 'AM'
        break
      case 'pm':
        out += f.hour >= 12 ? 'pm' : 'am'
        break
      default:
        out += fmtOffset(f.offset, s, s[0] === 'Z')
    }
  }
  return out
}

/** Go's `time.Parse(layout, value)` (UTC unless the value has an offset), as ns since the epoch. */
export function parse(layout: string, value: string): bigint | undefined {
  let v = value
  let year = 1
  let month = 1
  let day = 1
  let hour = 0
  let minute = 0
  let second = 0
  let nanos = 0n
  let pm: boolean | undefined
  let offset: number | undefined
  let yday = -1
  const num = (min: number, max: number, fixed = false): number | undefined => {
    const m = (fixed ? new RegExp(`^[0-9]{${max}}`) : new RegExp(`^[0-9]{${min},${max}}`)).exec(v)
    if (m === null) return undefined
    v = v.slice(m[0].length)
    return Number(m[0])
  }
  const name = (list: string[], short: boolean): number | undefined => {
    const i = list.findIndex((n) => v.toLowerCase().startsWith((short ? n.slice(0, 3) : n).toLowerCase()))
    if (i === -1) return undefined
    v = v.slice(short ? 3 : list[i]!.length)
    return i
  }
  const fraction = () => {
    const m = /^[.,]([0-9]+)/.exec(v)
    if (m === null) return
    nanos = BigInt(m[1]!.slice(0, 9).padEnd(9, '0'))
    v = v.slice(m[0].length)
  }
  const cs = chunks(layout)
  for (let ci = 0; ci < cs.length; ci++) {
    const c = cs[ci]!
    if (typeof c === 'string') {
      const lit = c.replace(/^\s+/, '')
      const vv = c.length !== lit.length ? v.replace(/^\s+/, '') : v
      if (!vv.startsWith(lit)) return undefined
      v = vv.slice(lit.length)
      continue
    }
    const s = c.std
    let n: number | undefined
    switch (s) {
      case 'January':
      case 'Jan':
        n = name(MONTHS, s === 'Jan')
        if (n === undefined) return undefined
        month = n + 1
        break
      case 'Monday':
      case 'Mon':
        if (name(DAYS, s === 'Mon') === undefined) return undefined
        break
      case 'MST': {
        const m = /^(UTC|GMT([+-][0-9]{1,2})?|[A-Z]{3,5})/.exec(v)
        if (m === null) return undefined
        v = v.slice(m[0].length)
        if (m[1] === 'UTC') offset = 0
        break
      }
      case '2006': {
        n = num(4, 4, true)
        if (n === undefined) return undefined
        year = n
        break
      }
      case '06':
        n = num(2, 2, true)
        if (n === undefined) return undefined
        year = n >= 69 ? 1900 + n : 2000 + n
        break
      case '002':
      case '__2':
        if (s === '__2') v = v.replace(/^ {1,2}/, '')
        n = num(s === '002' ? 3 : 1, 3, s === '002')
        if (n === undefined || n < 1 || n > 366) return undefined
        yday = n
        break
      case '01':
      case '1':
        n = num(s === '01' ? 2 : 1, 2, s === '01')
        if (n === undefined || n < 1 || n > 12) return undefined
        month = n
        break
      case '02':
      case '2':
      case '_2':
        if (s === '_2' && v[0] === ' ') v = v.slice(1)
        n = num(s === '02' ? 2 : 1, 2, s === '02')
        if (n === undefined || n < 1 || n > 31) return undefined
        day = n
        break
      case '15':
        n = num(1, 2)
        if (n === undefined || n > 23) return undefined
        hour = n
        break
      case '03':
      case '3':
        n = num(s === '03' ? 2 : 1, 2, s === '03')
        if (n === undefined || n > 12) return undefined
        hour = n
        break
      case '04':
      case '4':
        n = num(s === '04' ? 2 : 1, 2, s === '04')
        if (n === undefined || n > 59) return undefined
        minute = n
        break
      case '05':
      case '5': {
        n = num(s === '05' ? 2 : 1, 2, s === '05')
        if (n === undefined || n > 59) return undefined
        second = n
        // A fraction the layout does not mention is accepted after seconds (Go).
        const next = cs[ci + 1]
        if (!(typeof next === 'object' && /^[.,]/.test(next.std))) fraction()
        break
      }
      case 'PM':
      case 'pm': {
        const m = /^(AM|PM)/i.exec(v)
        if (m === null) return undefined
        pm = m[1]!.toUpperCase() === 'PM'
        v = v.slice(2)
        break
      }
      default: {
        if (s[0] === '.' || s[0] === ',') {
          if (s[1] === '0') {
            const m = new RegExp(`^[.,]([0-9]{${s.length - 1}})`).exec(v)
            if (m === null) return undefined
            nanos = BigInt(m[1]!.padEnd(9, '0'))
            v = v.slice(m[0].length)
          } else fraction()
          break
        }
        if (s[0] === 'Z' && v[0] === 'Z') {
          v = v.slice(1)
          offset = 0
          break
        }
        const body = s.slice(1)
        const re =
          body === '07'
            ? /^([+-])([0-9]{2})/
            : body === '0700'
              ? /^([+-])([0-9]{2})([0-9]{2})/
              : body === '07:00'
                ? /^([+-])([0-9]{2}):([0-9]{2})/
                : body === '070000'
                  ? /^([+-])([0-9]{2})([0-9]{2})([0-9]{2})/
                  : /^([+-])([0-9]{2}):([0-9]{2}):([0-9]{2})/
        const m = re.exec(v)
        if (m === null) return undefined
        v = v.slice(m[0].length)
        const secs = Number(m[2]) * 3600 + Number(m[3] ?? 0) * 60 + Number(m[4] ?? 0)
        offset = m[1] === '-' ? -secs : secs
      }
    }
  }
  if (v !== '') return undefined
  if (pm !== undefined) {
    if (hour > 12) return undefined
    if (pm && hour < 12) hour += 12
    else if (!pm && hour === 12) hour = 0
  }
  if (yday >= 0) {
    const d = new Date(Date.UTC(year, 0, yday))
    if (d.getUTCFullYear() !== year) return undefined
    month = d.getUTCMonth() + 1
    day = d.getUTCDate()
  }
  const d = new Date(0)
  d.setUTCFullYear(year, month - 1, day)
  if (d.getUTCDate() !== day) return undefined
  d.setUTCHours(hour, minute, second, 0)
  const ns = BigInt(d.getTime()) * NS_PER_MS + nanos - BigInt(offset ?? 0) * 1_000_000_000n
  return ns
}
