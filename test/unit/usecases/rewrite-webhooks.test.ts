import {describe, expect, it} from 'vitest'

import {type ApiResource, type KubeObject, KubeApiError} from '../../../src/kube/types.js'
import {
  findUpdateWebhooks,
  MUTATING_WEBHOOKS,
  ruleMatchesUpdate,
  updateWebhooksOf,
  VALIDATING_WEBHOOKS,
  type WebhookRule,
  webhookWarning,
  webhooksListWarning,
} from '../../../src/usecases/rewrite/webhooks.js'
import {CONFIGMAPS, FakeCluster, PANDAS, SECRETS} from '../helpers/fake-cluster.js'

const NAMESPACES: ApiResource = {group: '', version: 'v1', resource: 'namespaces', kind: 'Namespace', namespaced: false}
const DEPLOYMENTS: ApiResource = {
  group: 'apps',
  version: 'v1',
  resource: 'deployments',
  kind: 'Deployment',
  namespaced: true,
}
const PANDAS_V2: ApiResource = {...PANDAS, version: 'v2'}

const rule = (r: Partial<WebhookRule> = {}): WebhookRule => ({
  operations: ['UPDATE'],
  apiGroups: [''],
  apiVersions: ['v1'],
  resources: ['secrets'],
  ...r,
})

describe('ruleMatchesUpdate (as kube-apiserver matches admission rules)', () => {
  it('operations: UPDATE or *, not CREATE/DELETE/CONNECT alone', () => {
    expect(ruleMatchesUpdate(rule(), SECRETS)).toBe(true)
    expect(ruleMatchesUpdate(rule({operations: ['*']}), SECRETS)).toBe(true)
    expect(ruleMatchesUpdate(rule({operations: ['CREATE', 'UPDATE']}), SECRETS)).toBe(true)
    expect(ruleMatchesUpdate(rule({operations: ['CREATE', 'DELETE', 'CONNECT']}), SECRETS)).toBe(false)
    expect(ruleMatchesUpdate(rule({operations: []}), SECRETS)).toBe(false)
  })

  it('apiGroups: "" is core, * is every group, others must be equal', () => {
    expect(ruleMatchesUpdate(rule({apiGroups: ['*']}), SECRETS)).toBe(true)
    expect(ruleMatchesUpdate(rule({apiGroups: ['apps']}), SECRETS)).toBe(false)
    expect(ruleMatchesUpdate(rule({apiGroups: ['apps'], resources: ['deployments']}), DEPLOYMENTS)).toBe(true)
    expect(ruleMatchesUpdate(rule({apiGroups: [''], resources: ['deployments']}), DEPLOYMENTS)).toBe(false)
    expect(ruleMatchesUpdate(rule({apiGroups: ['awesome.bears.example'], resources: ['pandas']}), PANDAS)).toBe(true)
  })

  it('resources: the name, *, and the subresource forms (secrets/* and */* match the main resource; secrets/status does not)', () => {
    for (const resources of [['secrets'], ['*'], ['secrets/*'], ['*/*'], ['configmaps', 'secrets']])
      expect(ruleMatchesUpdate(rule({resources}), SECRETS), resources.join()).toBe(true)
    for (const resources of [['configmaps'], ['secrets/status'], ['*/scale'], ['secret'], []])
      expect(ruleMatchesUpdate(rule({resources}), SECRETS), resources.join()).toBe(false)
  })

  it('scope: Namespaced, Cluster or * (namespaces themselves are cluster-scoped)', () => {
    expect(ruleMatchesUpdate(rule({scope: 'Namespaced'}), SECRETS)).toBe(true)
    expect(ruleMatchesUpdate(rule({scope: 'Cluster'}), SECRETS)).toBe(false)
    expect(ruleMatchesUpdate(rule({scope: '*'}), SECRETS)).toBe(true)
    const any = {apiGroups: ['*'], resources: ['*']}
    expect(ruleMatchesUpdate(rule({...any, scope: 'Cluster'}), PANDAS)).toBe(true)
    expect(ruleMatchesUpdate(rule({...any, scope: 'Namespaced'}), PANDAS)).toBe(false)
    expect(ruleMatchesUpdate(rule({...any, scope: 'Cluster'}), NAMESPACES)).toBe(true)
    expect(ruleMatchesUpdate(rule({...any, scope: 'Namespaced'}), NAMESPACES)).toBe(false)
  })

  it('versions: Exact needs the version (or *); Equivalent (the default) matches a rule for another version of the same group/resource', () => {
    const v1Pandas = rule({apiGroups: ['awesome.bears.example'], apiVersions: ['v1'], resources: ['pandas']})
    expect(ruleMatchesUpdate(v1Pandas, PANDAS, 'Exact')).toBe(true)
    expect(ruleMatchesUpdate(v1Pandas, PANDAS_V2, 'Exact')).toBe(false)
    expect(ruleMatchesUpdate({...v1Pandas, apiVersions: ['*']}, PANDAS_V2, 'Exact')).toBe(true)
    expect(ruleMatchesUpdate(v1Pandas, PANDAS_V2, 'Equivalent')).toBe(true)
    expect(ruleMatchesUpdate(v1Pandas, PANDAS_V2)).toBe(true)
    // Equivalent is about versions only: another group or resource still does not match
    expect(ruleMatchesUpdate({...v1Pandas, apiGroups: ['other.example']}, PANDAS_V2, 'Equivalent')).toBe(false)
    expect(ruleMatchesUpdate({...v1Pandas, resources: ['bears']}, PANDAS_V2, 'Equivalent')).toBe(false)
  })
})

function configuration(
  kind: 'Validating' | 'Mutating',
  name: string,
  webhooks: Array<Record<string, unknown>>,
): KubeObject {
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: `${kind}WebhookConfiguration`,
    metadata: {name},
    webhooks,
  }
}

describe('updateWebhooksOf', () => {
  it('keeps the matching webhooks with their defaults (failurePolicy Fail, matchPolicy Equivalent, 10 s) and what may filter them', () => {
    const config = configuration('Validating', 'policy', [
      {name: 'all.policy.example', rules: [rule({apiGroups: ['*'], apiVersions: ['*'], resources: ['*']})]},
      {name: 'pods.policy.example', rules: [rule({resources: ['pods']})]},
      {
        name: 'some.policy.example',
        failurePolicy: 'Ignore',
        matchPolicy: 'Exact',
        timeoutSeconds: 3,
        rules: [rule({resources: ['secrets/*']})],
        namespaceSelector: {matchLabels: {team: 'a'}},
        objectSelector: {},
        matchConditions: [{name: 'only-some', expression: 'true'}],
      },
    ])
    expect(updateWebhooksOf(config, 'validating', [SECRETS, CONFIGMAPS])).toEqual([
      {
        kind: 'validating',
        configuration: 'policy',
        webhook: 'all.policy.example',
        failurePolicy: 'Fail',
        matchPolicy: 'Equivalent',
        timeoutSeconds: 10,
        resources: ['secrets', 'configmaps'],
        seesNoOpWrite: 'all',
        filteredBy: [],
      },
      {
        kind: 'validating',
        configuration: 'policy',
        webhook: 'some.policy.example',
        failurePolicy: 'Ignore',
        matchPolicy: 'Exact',
        timeoutSeconds: 3,
        resources: ['secrets'],
        seesNoOpWrite: 'some',
        // an empty objectSelector selects everything: not a filter
        filteredBy: ['namespaceSelector', 'matchConditions'],
      },
    ])
  })
})

describe('findUpdateWebhooks', () => {
  it('lists validating and mutating configurations (paged) and keeps what matches', async () => {
    const c = new FakeCluster()
    for (let i = 0; i < 3; i++)
      c.seedObject(
        VALIDATING_WEBHOOKS,
        configuration('Validating', `v-${i}`, [{name: `v${i}.example`, rules: [rule()]}]),
      )
    // more than one page of 500
    for (let i = 0; i < 501; i++)
      c.seedObject(
        VALIDATING_WEBHOOKS,
        configuration('Validating', `w-${i}`, [{name: 'cm.example', rules: [rule({resources: ['configmaps']})]}]),
      )
    c.seedObject(VALIDATING_WEBHOOKS, configuration('Validating', 'z-last', [{name: 'z.example', rules: [rule()]}]))
    c.seedObject(
      MUTATING_WEBHOOKS,
      configuration('Mutating', 'm', [{name: 'm.example', rules: [rule({operations: ['*']})]}]),
    )
    const check = await findUpdateWebhooks(c, [SECRETS])
    expect(check.listError).toBeUndefined()
    expect(check.webhooks.map((w) => `${w.kind} ${w.configuration}/${w.webhook}`)).toEqual([
      'validating v-0/v0.example',
      'validating v-1/v1.example',
      'validating v-2/v2.example',
      'validating z-last/z.example',
      'mutating m/m.example',
    ])
    expect(c.calls.list).toBe(3)
  })

  it('a listing that fails (RBAC) is reported, not thrown', async () => {
    const c = new FakeCluster()
    c.seedObject(VALIDATING_WEBHOOKS, configuration('Validating', 'v', [{name: 'v.example', rules: [rule()]}]))
    c.fault = ({resource}) => {
      if (resource === MUTATING_WEBHOOKS)
        throw new KubeApiError(
          403,
          'Forbidden',
          'mutatingwebhookconfigurations.admissionregistration.k8s.io is forbidden: User "dev" cannot list resource',
        )
    }
    const check = await findUpdateWebhooks(c, [SECRETS])
    expect(check.webhooks.map((w) => w.webhook)).toEqual(['v.example'])
    expect(check.listError).toBe(
      '403 Forbidden: mutatingwebhookconfigurations.admissionregistration.k8s.io is forbidden: User "dev" cannot list resource',
    )
    expect(webhooksListWarning(check.listError!)).toMatch(
      /^could not list admission webhook configurations \(403 Forbidden: .*\); a webhook matching UPDATE could still deny or slow the rewrite$/,
    )
  })
})

describe('webhookWarning', () => {
  it('names the webhook, its configuration, kind, failurePolicy and whether it sees the no-op write', () => {
    const [fail] = updateWebhooksOf(
      configuration('Validating', 'policy', [{name: 'deny.example', rules: [rule()]}]),
      'validating',
      [SECRETS],
    )
    expect(webhookWarning(fail!)).toBe(
      'validating admission webhook deny.example (ValidatingWebhookConfiguration policy) matches UPDATE of secrets: it sees every no-op write; failurePolicy Fail: a denial, an error or a timeout (10s) fails that object',
    )
    const [ignore] = updateWebhooksOf(
      configuration('Mutating', 'inject', [
        {
          name: 'm.example',
          failurePolicy: 'Ignore',
          timeoutSeconds: 5,
          objectSelector: {matchExpressions: [{key: 'a', operator: 'Exists'}]},
          rules: [rule()],
        },
      ]),
      'mutating',
      [SECRETS],
    )
    expect(webhookWarning(ignore!)).toBe(
      'mutating admission webhook m.example (MutatingWebhookConfiguration inject) matches UPDATE of secrets: its objectSelector may exclude some objects; it sees the no-op write of the rest; ' +
        'failurePolicy Ignore: if it is down each write waits up to 5s, then goes on; a change it makes turns the no-op write into a real one',
    )
  })
})
