/**
 * deploy/: every YAML file parses (the Envoy configuration embedded in a ConfigMap too), and every
 * `verdict` argument in the Kubernetes manifests, the Dockerfile and docs/deploy.md is accepted by
 * the command's parser.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { createProgram } from '../packages/cli/src/main.js'

type Command = ReturnType<typeof createProgram>

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const { parseAllDocuments, parse } = createRequire(join(ROOT, 'packages/cli/package.json'))('yaml') as {
  parseAllDocuments(text: string): Array<{ errors: unknown[]; toJS(): unknown }>
  parse(text: string): unknown
}

/** Why the parser refuses `args`, or undefined when it accepts them (no command runs). */
function refusal(args: readonly string[]): string | undefined {
  let err = ''
  const io = {
    stdout: () => {},
    stderr: (t: string) => {
      err += t
    },
    isTTY: false,
    readStdin: async () => '',
  }
  const program = createProgram(io, () => {})
  const silence = (c: Command): void => {
    c.action(() => {})
    for (const s of c.commands) silence(s)
  }
  for (const c of program.commands) silence(c)
  try {
    program.parse(['node', 'verdict', ...args])
    return undefined
  } catch (e) {
    return err || String(e)
  }
}

const K8S = join(ROOT, 'deploy/kubernetes')
const manifests = readdirSync(K8S).filter((f) => f.endsWith('.yaml'))

type Obj = Record<string, any>

function verdictArgs(): Array<{ where: string; args: string[] }> {
  const out: Array<{ where: string; args: string[] }> = []
  for (const f of manifests)
    for (const doc of parseAllDocuments(readFileSync(join(K8S, f), 'utf8'))) {
      const o = doc.toJS() as Obj
      for (const c of (o?.spec?.template?.spec?.containers ?? []) as Obj[])
        if (c.name === 'verdict') out.push({ where: `${f} container verdict`, args: c.args as string[] })
    }
  const docker = readFileSync(join(ROOT, 'deploy/Dockerfile'), 'utf8')
  const cmd = /^CMD (\[.*\])$/m.exec(docker)
  if (cmd) out.push({ where: 'Dockerfile CMD', args: JSON.parse(cmd[1]!) as string[] })
  const md = readFileSync(join(ROOT, 'docs/deploy.md'), 'utf8')
  for (const line of md.split('\n'))
    if (line.startsWith('verdict '))
      out.push({ where: `docs/deploy.md: ${line}`, args: line.split(/\s+/).slice(1) })
  return out
}

describe('deploy/', () => {
  it('every YAML document parses, the embedded Envoy configuration too', () => {
    expect(manifests.length).toBeGreaterThanOrEqual(2)
    for (const f of manifests)
      for (const doc of parseAllDocuments(readFileSync(join(K8S, f), 'utf8'))) {
        expect(doc.errors, f).toEqual([])
        const o = doc.toJS() as Obj
        if (o?.data?.['envoy.yaml'] !== undefined)
          expect(parse(o.data['envoy.yaml'])).toHaveProperty('static_resources')
      }
  })

  it('every verdict argument is accepted by the CLI parser', () => {
    const all = verdictArgs()
    expect(all.map((a) => a.where.split(':')[0])).toEqual(
      expect.arrayContaining(['sidecar.yaml container verdict', 'Dockerfile CMD', 'docs/deploy.md']),
    )
    for (const { where, args } of all) expect(refusal(args), where).toBeUndefined()
  })

  it('the check refuses what the parser refuses', () => {
    expect(refusal(['serve', '--bundle-min-delay', 'soon'])).toMatch(/positive number/)
    expect(refusal(['serve', '--no-such-flag'])).toMatch(/unknown option/)
  })

  it('the sidecar probes /healthz and /readyz, is scraped, and runs non-root on a read-only root', () => {
    const docs = parseAllDocuments(readFileSync(join(K8S, 'sidecar.yaml'), 'utf8')).map(
      (d) => d.toJS() as Obj,
    )
    const pod = docs.find((d) => d.kind === 'Deployment')!.spec.template
    const v = (pod.spec.containers as Obj[]).find((c) => c.name === 'verdict')!
    expect(v.livenessProbe.httpGet.path).toBe('/healthz')
    expect(v.readinessProbe.httpGet.path).toBe('/readyz')
    expect(v.securityContext.readOnlyRootFilesystem).toBe(true)
    expect(pod.spec.securityContext.runAsNonRoot).toBe(true)
    expect(pod.metadata.annotations['prometheus.io/scrape']).toBe('true')
  })
})
