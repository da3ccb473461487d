import {parse as parseYaml} from 'yaml'

import {type ClusterConfig, configFromBytes} from '../controlplane/cluster-config.js'
import {readBoundedFile} from '../encryption/config/load.js'
import {PluginError, preconditionError, usageError} from '../errors.js'
import {readConfigFlag} from './config-file.js'
import type {KubeObject} from '../kube/types.js'

/** verify --from-file: one object with apiVersion, kind and metadata.name, or a usage error (exit 2). */
export async function readManifestFlag(path: string | undefined): Promise<KubeObject | undefined> {
  if (!path) return undefined
  let manifest: KubeObject | undefined
  try {
    // bounded as --config is: /dev/zero or a huge file would be read until memory runs out
    const read = await readBoundedFile(path)
    if (read.refused)
      throw preconditionError('MANIFEST_TOO_LARGE', `--from-file ${path} ${read.refused}; nothing was done`, {
        hint: 'Pass a manifest of one object.',
      })
    manifest = parseYaml(read.bytes!.toString('utf8')) as KubeObject
  } catch (error) {
    if (error instanceof PluginError) throw error
    throw usageError(
      'MANIFEST_UNREADABLE',
      `cannot read --from-file ${path}: ${(error as Error).message.split('\n')[0]}`,
    )
  }
  if (!manifest?.apiVersion || !manifest.kind || !manifest.metadata?.name)
    throw usageError(
      'MANIFEST_INVALID',
      `--from-file ${path} is not one object with apiVersion, kind and metadata.name`,
    )
  return manifest
}

/** verify --config: the file (bounded, as every --config), decoded and validated (unreadable: exit 2, invalid: exit 3). */
export async function readVerifyConfigFlag(path: string | undefined): Promise<ClusterConfig | undefined> {
  const local = await readConfigFlag(path)
  return local && configFromBytes(local.bytes, local.path)
}
