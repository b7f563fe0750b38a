// Helpers about the packages a bench suite uses: versions for the report, and optional imports of
// workspace packages that may not build while others work on them (the suite then prints a note).
import { readFileSync } from 'node:fs'

/** The installed version of a bench dependency, read from its package.json. */
export function versionOf(name) {
  try {
    const url = new URL(`../node_modules/${name}/package.json`, import.meta.url)
    return JSON.parse(readFileSync(url, 'utf8')).version ?? '?'
  } catch {
    return '?'
  }
}

/** The module, or a one-line reason it cannot be imported (unbuilt, broken). */
export async function optionalImport(name) {
  try {
    return await import(name)
  } catch (e) {
    const why = `${name} could not be imported (${e instanceof Error ? e.message.split('\n')[0] : String(e)})`
    console.error(`note: ${why}`)
    return why
  }
}
