import {apiserverMessage} from '../encryption/config/errors.js'
import type {EncryptionConfiguration} from '../encryption/config/model.js'
import {validateEncryptionConfig} from '../encryption/config/verdict.js'
import {usageError} from '../errors.js'

/**
 * --resource values for a generated config, checked as kube-apiserver will check the file (the same
 * validator, on a config with just these names), before anything is contacted: exit 2 otherwise.
 * '' or 'sec rets' would load (they match nothing); from a flag they are a quoting slip.
 */
export function checkResourceFlags(resources: string[] | undefined): void {
  if (!resources) return
  const blank = resources.find((resource) => resource === '' || /\s/.test(resource))
  if (blank !== undefined) {
    throw usageError('RESOURCE_NAMES_NOTHING', `--resource ${JSON.stringify(blank)} names no resource.`, {
      hint: "Give a lowercase plural such as 'secrets' or 'deployments.apps', or a wildcard ('*.', '*.apps', '*.*'). Nothing was written.",
    })
  }
  const config: EncryptionConfiguration = {
    apiVersion: 'apiserver.config.k8s.io/v1',
    kind: 'EncryptionConfiguration',
    resources: [{resources, providers: [{identity: {}}]}],
  }
  const check = validateEncryptionConfig(config)
  if (check.errors.length > 0) {
    throw usageError('RESOURCE_INVALID', `--resource: ${apiserverMessage(check.errors)}`, {
      hint: "Resources are lowercase plurals like 'secrets' or 'deployments.apps'. Nothing was changed.",
    })
  }
}
