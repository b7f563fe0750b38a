/**
 * Node's own modules, reached at run time through `process.getBuiltinModule` and never imported
 * statically, so the builtins bundle for a browser. Only what has no synchronous web or pure-JS
 * equivalent goes through here: RSA and ECDSA keys and signatures (`io.jwt.*` with RS/PS/ES keys,
 * `crypto.x509.*`, `crypto.parse_private_keys`) and the SDK's builtin table (`builtins/sdk.ts`).
 */
import type * as NodeCrypto from 'node:crypto'
import type * as NodeModule from 'node:module'

type Proc = { getBuiltinModule?: (id: string) => unknown } | undefined

function builtinModule(id: string): unknown {
  const proc = (globalThis as { process?: Proc }).process
  try {
    return proc?.getBuiltinModule?.(id)
  } catch {
    return undefined
  }
}

/**
 * `node:crypto`, or an Error naming the builtin that needs it. A builtin that throws fails the
 * evaluation (closed), with this message.
 */
export function nodeCrypto(builtin: string): typeof NodeCrypto {
  const m = builtinModule('node:crypto') as typeof NodeCrypto | undefined
  if (m === undefined)
    throw new Error(
      `builtin ${builtin} needs node:crypto (RSA/ECDSA keys, X.509), which this JavaScript runtime does not provide`,
    )
  return m
}

/** `node:module`, or undefined outside Node. */
export function nodeModule(): typeof NodeModule | undefined {
  return builtinModule('node:module') as typeof NodeModule | undefined
}
