// Where the build and the tests find the tools scripts/bootstrap.sh installs: the repo's .tools/bin
// first (krew, validate-krew-manifest, rcodesign: built into ~/.cache/kubectl-encryption and copied
// there), then PATH.
import {spawnSync} from 'node:child_process'
import {existsSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

export const TOOLS_BIN = join(fileURLToPath(new URL('..', import.meta.url)), '.tools', 'bin')

/** The path of `name` (.tools/bin, then PATH), or undefined when it is not installed. */
export function findTool(name: string): string | undefined {
  const local = join(TOOLS_BIN, name)
  if (existsSync(local)) return local
  const found = spawnSync('sh', ['-c', 'command -v "$1"', 'sh', name], {encoding: 'utf8'}).stdout.trim()
  return found || undefined
}
