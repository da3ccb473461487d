/**
 * Flags of a static pod's container command, as kubeadm writes them (`--name=value`, one per
 * element); `--name value` and bare boolean `--name` are accepted too. The last occurrence wins,
 * as with Go's flag parsing.
 */
export function parseCommandFlags(command: readonly string[]): Map<string, string> {
  const flags = new Map<string, string>()
  for (let i = 0; i < command.length; i++) {
    const arg = command[i]
    if (!arg.startsWith('--') || arg === '--') continue
    const eq = arg.indexOf('=')
    if (eq > 2) {
      flags.set(arg.slice(2, eq), arg.slice(eq + 1))
      continue
    }
    const next = command[i + 1]
    if (next !== undefined && !next.startsWith('-')) {
      flags.set(arg.slice(2), next)
      i++
    } else {
      flags.set(arg.slice(2), 'true')
    }
  }
  return flags
}

/** Go's strconv.ParseBool, as kube-apiserver reads boolean flags. */
export function parseGoBool(value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value)) return true
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(value)) return false
  return undefined
}
