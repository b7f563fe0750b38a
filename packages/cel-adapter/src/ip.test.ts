/** ipaddr.js with Node's strictness: the same answers as node:net's isIP and BlockList, which the CEL functions used before. */
import { BlockList, isIP } from 'node:net'
import { describe, expect, test } from 'vitest'
import { inRange, ipFamily, ipRange } from './ip.js'

const ADDRESSES = [
  '1.2.3.4',
  '01.2.3.4',
  '1.2.3',
  '256.1.1.1',
  '0.0.0.0',
  '255.255.255.255',
  '1.2.3.04',
  '0x1.2.3.4',
  ' 1.2.3.4',
  '1.2.3.4 ',
  '::',
  '::1',
  '::ffff:1.2.3.4',
  '::ffff:01.2.3.4',
  '::ffff:0x1.2.3.4',
  '::ffff:1.2.3',
  '::ffff:256.1.1.1',
  '1::2::3',
  'fe80::1',
  'FE80::A',
  '1:2:3:4:5:6:7:8',
  '1:2:3:4:5:6:7:8:9',
  '::1.2.3.4',
  '1:2:3:4:5:6:1.2.3.4',
  '::0.0.0.1',
  '1:2:3:4:5:6:1.2.3.4',
  '1:2:3:4:5:6:7:1.2.3.4',
  ':1',
  '1:',
  '1:2:3:4:5:6:7::',
  '::2:3:4:5:6:7:8',
  '12345::',
  '::00001',
  '::0001',
  'a::b:c:d:e:f:1:2',
  '',
  'abcd:ef01:2345:6789:abcd:ef01:2345:6789',
  '2001:db8::/32',
  'localhost',
  '1.2.3.4.5',
  '::ffff:9.9.9.9',
]

describe('ipFamily', () => {
  test.each(ADDRESSES)('%j: as net.isIP', (s) => {
    expect(ipFamily(s)).toBe(isIP(s))
  })
  test('zone ids and overlong text are not addresses', () => {
    expect(ipFamily('fe80::1%eth0')).toBe(0)
    expect(ipFamily(`1.2.3.4${' '.repeat(64)}`)).toBe(0)
  })
})

describe('inRange', () => {
  const RANGES: Array<[string, number]> = [
    ['1.2.3.0', 24],
    ['0.0.0.0', 0],
    ['10.0.0.0', 8],
    ['1.2.3.4', 32],
    ['::ffff:0:0', 96],
    ['::ffff:1.2.3.0', 120],
    ['::', 0],
    ['::', 96],
    ['2001:db8::', 32],
    ['fe80::', 10],
  ]
  const IPS = [
    '1.2.3.4',
    '1.2.4.4',
    '10.9.8.7',
    '9.9.9.9',
    '::1',
    '::ffff:1.2.3.4',
    '::ffff:9.9.9.9',
    '::1.2.3.4',
    '1:2:3:4:5:6:1.2.3.9',
    '::0.0.0.1',
    '2001:db8::1',
    '2001:db9::1',
    'fe80::abcd',
  ]
  test('every range and address answers as BlockList.check', () => {
    for (const [addr, bits] of RANGES) {
      const fam = ipFamily(addr) as 4 | 6
      const list = new BlockList()
      list.addSubnet(addr, bits, fam === 4 ? 'ipv4' : 'ipv6')
      const range = ipRange(addr, fam, bits)
      for (const ip of IPS) {
        const ipFam = ipFamily(ip) as 4 | 6
        expect([addr, bits, ip, inRange(range, ip, ipFam)]).toEqual([
          addr,
          bits,
          ip,
          list.check(ip, ipFam === 4 ? 'ipv4' : 'ipv6'),
        ])
      }
    }
  })
})
