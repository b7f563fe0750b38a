// Where decide() spends its time on the reference policy's allowed request, from V8's CPU profiler
// (node:inspector, the same sampler as `node --cpu-prof`): self time by function and by file, top
// entries as Markdown. Run by hand after `pnpm build`, not by `pnpm bench`:
//
//   node bench/lib/decide-profile-child.mjs [iterations] [--out decide.cpuprofile]
//
// `--out` also writes the profile for Chrome DevTools or speedscope. (Named *-child so knip counts
// it as an entry point, like the other scripts here that run on their own.)
import { writeFile } from 'node:fs/promises'
import { createCelEvaluator } from '@verdict/cel-adapter'
import { hotSpots, profileCalls } from './cpu-profile.mjs'
import { celPolicy, createIssuer, engineFor, referenceCases } from './reference-policy.mjs'

const args = process.argv.slice(2)
const outAt = args.indexOf('--out')
const out = outAt >= 0 ? args[outAt + 1] : undefined
const iterations = Number(args.find((a, i) => /^\d+$/.test(a) && (outAt < 0 || i !== outAt + 1)) ?? 200_000)

const issuer = await createIssuer()
const [allowed] = await referenceCases(issuer)
const engine = await engineFor(celPolicy([issuer]), [createCelEvaluator()])
const first = await engine.decide(allowed.request)
if (!first.allowed) throw new Error(`the allowed case was denied: ${first.reason}`)

const { profile, usPerCall } = await profileCalls(() => engine.decide(allowed.request), iterations)
engine.close()
if (out !== undefined) await writeFile(out, JSON.stringify(profile))

const spots = hotSpots(profile)
console.log(`decide() on the reference policy's allowed request, ${iterations.toLocaleString('en-US')} times:
${usPerCall.toFixed(2)} µs each with the profiler on (${spots.samples.toLocaleString('en-US')} samples).

${spots.functions}

${spots.files}`)
