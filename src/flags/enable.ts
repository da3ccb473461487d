import {Flags} from '@oclif/core'

import {DEFAULT_CONFIG_PATH} from '../controlplane/apiserver-manifest.js'
import {
  DEFAULT_KMS_NAME,
  DEFAULT_KMS_TIMEOUT,
  DEFAULT_PROVIDER,
  GENERATED_PROVIDERS,
  kmsEndpointProblem,
} from '../encryption/config/generate.js'
import {parseGoDuration} from '../encryption/gocompat/format.js'
import {usageError} from '../errors.js'
import type {EnableOptions} from '../usecases/enable.js'
import {controlPlaneFlags} from './control-plane.js'

export const enableFlags = {
  ...controlPlaneFlags,
  config: Flags.string({
    description: 'Use this EncryptionConfiguration file (validated first) instead of generating one.',
  }),
  'config-path': Flags.string({description: 'Where the config lives on each node.', default: DEFAULT_CONFIG_PATH}),
  provider: Flags.option({
    description: `Provider of a generated config (default ${DEFAULT_PROVIDER}; see the description). kms needs --kms-endpoint.`,
    options: [...GENERATED_PROVIDERS, 'kms'],
  })(),
  'kms-endpoint': Flags.string({
    description:
      'With --provider kms: the KMS v2 plugin socket as the apiserver sees it, unix:///absolute/path.sock; its directory is mounted into the apiserver pod.',
  }),
  'kms-name': Flags.string({description: `With --provider kms: the provider's name (default ${DEFAULT_KMS_NAME}).`}),
  'kms-timeout': Flags.string({
    description: `With --provider kms: how long the apiserver waits for the plugin (default ${DEFAULT_KMS_TIMEOUT}).`,
  }),
  resource: Flags.string({
    description: 'Resource a generated config covers (repeatable; default secrets).',
    multiple: true,
  }),
  'automatic-reload': Flags.boolean({
    description: 'Also set --encryption-provider-config-automatic-reload=true.',
    default: false,
  }),
  'kubeadm-config': Flags.boolean({
    description: 'Keep kubeadm-config (apiServer.extraArgs/extraVolumes) in step.',
    default: true,
    allowNo: true,
  }),
  verify: Flags.boolean({
    description: 'After the rollout, prove new writes are encrypted (a test Secret read back from etcd).',
    default: true,
    allowNo: true,
  }),
  rewrite: Flags.boolean({
    description: 'After the rollout, rewrite the existing objects the config covers, so they are encrypted too.',
    default: false,
  }),
}

/** --kms-* are checked before the cluster is contacted: one line, exit 2, nothing changed. */
export function enableKmsOptions(flags: {
  provider?: string
  'kms-endpoint'?: string
  'kms-name'?: string
  'kms-timeout'?: string
}): EnableOptions['kms'] {
  const given = (['kms-endpoint', 'kms-name', 'kms-timeout'] as const).find((f) => flags[f] !== undefined)
  if (flags.provider !== 'kms') {
    if (given) throw usageError('KMS_FLAG_WITHOUT_KMS', `--${given} only applies with --provider kms.`)
    return undefined
  }
  const endpoint = flags['kms-endpoint']
  const example = 'For example: --kms-endpoint unix:///var/run/kmsplugin/socket.sock'
  if (endpoint === undefined)
    throw usageError(
      'KMS_ENDPOINT_MISSING',
      '--provider kms needs --kms-endpoint (the plugin socket, unix:///absolute/path.sock).',
      {hint: example},
    )
  const problem = kmsEndpointProblem(endpoint)
  if (problem)
    throw usageError('KMS_ENDPOINT_INVALID', `--kms-endpoint ${JSON.stringify(endpoint)} ${problem}.`, {hint: example})
  const timeout = flags['kms-timeout'] ?? DEFAULT_KMS_TIMEOUT
  const parsed = parseGoDuration(timeout)
  if ('error' in parsed || parsed.nanos <= 0n)
    throw usageError('KMS_TIMEOUT_INVALID', `--kms-timeout ${JSON.stringify(timeout)} is not a positive duration.`, {
      hint: 'Use a Go duration such as 3s.',
    })
  return {name: flags['kms-name'] ?? DEFAULT_KMS_NAME, endpoint, timeout}
}
