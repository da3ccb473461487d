import {Flags} from '@oclif/core'

import {usageError} from '../errors.js'

/** kubectl's own global flags, with kubectl's names and short forms (docs/architecture.md §2). */
export const kubeFlags = {
  kubeconfig: Flags.string({
    description: 'Path to the kubeconfig file to use (default: $KUBECONFIG or ~/.kube/config).',
    helpGroup: 'KUBE',
  }),
  context: Flags.string({description: 'The name of the kubeconfig context to use.', helpGroup: 'KUBE'}),
  'request-timeout': Flags.string({
    description: 'Time to wait for a single API request, e.g. 30s, 1m; 0 means no timeout.',
    default: '0',
    helpGroup: 'KUBE',
  }),
}

/**
 * A namespace as the API takes it (a lowercase RFC 1123 label); throws the reason otherwise. An
 * empty name is refused outright: `-n "$NS"` with NS unset must not widen a command's scope.
 */
export function checkNamespaceName(name: string): string {
  if (name === '') throw new Error('namespace must not be empty')
  if (name.length > 63 || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name))
    throw new Error(
      `invalid namespace ${JSON.stringify(name)}: a namespace is a lowercase RFC 1123 label (a-z, 0-9 and '-', starting and ending with a letter or digit, at most 63 characters)`,
    )
  return name
}

/** oclif `parse` for every -n/--namespace flag: a bad name is a usage error (exit 2) before anything runs. */
export const parseNamespace = async (input: string): Promise<string> => checkNamespaceName(input)

export const namespaceFlags = {
  namespace: Flags.string({
    char: 'n',
    description: 'The namespace scope for this request.',
    helpGroup: 'KUBE',
    parse: parseNamespace,
  }),
  'all-namespaces': Flags.boolean({
    char: 'A',
    description: 'Act on objects in all namespaces.',
    default: false,
    helpGroup: 'KUBE',
  }),
}

export interface KubeOptions {
  kubeconfig?: string
  context?: string
  requestTimeoutMs: number
}

/** Parses kubectl's duration syntax for --request-timeout: a bare number is seconds; 0 disables. */
export function parseKubectlDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim())
  if (!match) throw new Error(`invalid duration ${JSON.stringify(text)}: use a number with a unit, e.g. 30s, 1m`)
  const value = Number(match[1])
  const unit = match[2] ?? 's'
  const factor = {ms: 1, s: 1000, m: 60_000, h: 3_600_000}[unit] ?? 1000
  return Math.round(value * factor)
}

/** The kube flags as connection options; a bad --request-timeout is a usage error (exit 2). */
export function kubeOptionsFromFlags(flags: {
  kubeconfig?: string
  context?: string
  'request-timeout'?: string
}): KubeOptions {
  try {
    return {
      kubeconfig: flags.kubeconfig,
      context: flags.context,
      requestTimeoutMs: parseKubectlDuration(flags['request-timeout'] ?? '0'),
    }
  } catch (error) {
    throw usageError('USAGE', `--request-timeout: ${(error as Error).message}`)
  }
}
