import type {ControlPlaneNode} from './control-plane.js'
import type {EncryptionConfiguration} from '../encryption/config/model.js'
import {checkConfigBytes} from '../encryption/config/load.js'
import {preconditionError} from '../errors.js'
import type {RemoteFiles} from '../ssh/remote-files.js'

export interface ClusterConfig {
  config: EncryptionConfiguration
  hash?: string
  /** `--config FILE` or `node:path`. */
  source: string
  /** Read from a control-plane node: which one, and the file's path there. */
  node?: string
  path?: string
}

/** A local file given with --config; a bad file is a precondition error with the apiserver's message. */
export function configFromBytes(bytes: Buffer, path: string): ClusterConfig {
  const check = checkConfigBytes(bytes, path)
  if (!check.config || check.errors.length > 0) {
    throw preconditionError('CONFIG_INVALID', check.message, {
      hint: `Check the file with 'kubectl encryption config validate ${path}'.`,
    })
  }
  return {config: check.config, hash: check.hash, source: path}
}

/**
 * The config the apiservers run, read over SSH from the first control-plane node whose apiserver
 * has --encryption-provider-config. Undefined (with the reason) when encryption is off or SSH fails.
 */
export async function configFromNodes(
  nodes: ControlPlaneNode[],
  files: (node: ControlPlaneNode) => RemoteFiles,
): Promise<{found?: ClusterConfig; reason?: string}> {
  const node = nodes.find((n) => n.apiservers.some((a) => a.encryption.configPath))
  const path = node?.apiservers.find((a) => a.encryption.configPath)?.encryption.configPath
  if (!node || !path) return {reason: 'no apiserver has --encryption-provider-config (encryption is off)'}
  try {
    const bytes = await files(node).read(path)
    if (!bytes) return {reason: `${path} does not exist on ${node.name}`}
    const check = checkConfigBytes(bytes, path)
    if (!check.config || check.errors.length > 0)
      return {reason: `${node.name}:${path} is not a valid config: ${check.message}`}
    return {found: {config: check.config, hash: check.hash, source: `${node.name}:${path}`, node: node.name, path}}
  } catch (error) {
    return {reason: `cannot read ${path} on ${node.name} over SSH: ${(error as Error).message}`}
  }
}
