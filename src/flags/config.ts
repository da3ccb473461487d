import {Flags} from '@oclif/core'

import {usageError} from '../errors.js'
import {OLDEST_TARGET, parseTargetVersion, type TargetVersion} from '../encryption/config/target-version.js'

/** How the apiserver that will read the file is run: its release, reload flag and feature gates (docs/kubernetes-behaviour.md §5.1, §15). */
export const apiserverFlags = {
  'target-version': Flags.string({
    description:
      'Kubernetes release of the apiserver that will load the file, e.g. 1.29; gates features by release (custom resources 1.26, wildcards 1.27, KMS v1 off from 1.29). Default: 1.36.',
  }),
  'automatic-reload': Flags.boolean({
    description:
      'The apiserver runs with --encryption-provider-config-automatic-reload (KMS v1 names must then be unique).',
    default: false,
  }),
  'feature-gates': Flags.string({
    description: "The apiserver's --feature-gates that matter here, e.g. KMSv1=true.",
  }),
}

export function targetVersionFromFlag(text: string | undefined): TargetVersion | undefined {
  if (text === undefined) return undefined
  const version = parseTargetVersion(text)
  if (!version || version.minor < OLDEST_TARGET.minor) {
    throw usageError(
      'TARGET_VERSION_INVALID',
      `--target-version ${JSON.stringify(text)} is not a Kubernetes release from 1.${OLDEST_TARGET.minor} on.`,
      {
        hint: 'Give a release like 1.29 (EncryptionConfiguration v1 exists from 1.13).',
      },
    )
  }
  return version
}

/** Parses `KMSv1=true,KMSv2=false` as kube-apiserver's --feature-gates does. */
export function featureGatesFromFlag(text: string | undefined): Record<string, boolean> {
  const gates: Record<string, boolean> = {}
  if (!text) return gates
  for (const part of text.split(',')) {
    const match = /^\s*([A-Za-z0-9]+)\s*=\s*(true|false)\s*$/i.exec(part)
    if (!match?.[1] || !match[2]) {
      throw usageError('FEATURE_GATES_INVALID', `--feature-gates: ${JSON.stringify(part)} is not Name=true|false.`, {
        hint: 'Write gates as the apiserver takes them, e.g. --feature-gates KMSv1=true.',
      })
    }
    gates[match[1]] = match[2].toLowerCase() === 'true'
  }
  return gates
}
