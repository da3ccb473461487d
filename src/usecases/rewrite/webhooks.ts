import type {ApiResource, KubeObject, ObjectClient} from '../../kube/types.js'
import {errorMessage} from './api-errors.js'
import {resourceName} from './rewrite.js'

/**
 * Admission webhooks a rewrite will meet. A rewrite is an UPDATE whose object equals the stored one;
 * admission runs before storage compares the bytes, so every validating and mutating webhook whose
 * rules match UPDATE of a rewritten resource sees each of those writes (docs/kubernetes-behaviour.md §4.2). One that is down with failurePolicy Fail, or that denies, fails those objects; warning
 * first lets the operator fix or exclude it before a long run stops half way.
 *
 * The rules are matched as kube-apiserver's admission matcher does
 * (k8s.io/apiserver/pkg/admission/plugin/webhook/predicates/rules/rules.go).
 */

export const VALIDATING_WEBHOOKS: ApiResource = {
  group: 'admissionregistration.k8s.io',
  version: 'v1',
  resource: 'validatingwebhookconfigurations',
  kind: 'ValidatingWebhookConfiguration',
  namespaced: false,
}
export const MUTATING_WEBHOOKS: ApiResource = {
  group: 'admissionregistration.k8s.io',
  version: 'v1',
  resource: 'mutatingwebhookconfigurations',
  kind: 'MutatingWebhookConfiguration',
  namespaced: false,
}

/** admissionregistration.k8s.io/v1 RuleWithOperations. */
export interface WebhookRule {
  operations?: string[]
  apiGroups?: string[]
  apiVersions?: string[]
  resources?: string[]
  /** Cluster, Namespaced or * (the default). */
  scope?: string
}

interface LabelSelector {
  matchLabels?: Record<string, string>
  matchExpressions?: unknown[]
}

/** The fields of a v1 webhook the check reads. */
export interface AdmissionWebhook {
  name: string
  rules?: WebhookRule[]
  failurePolicy?: string
  matchPolicy?: string
  namespaceSelector?: LabelSelector
  objectSelector?: LabelSelector
  matchConditions?: Array<{name: string}>
  timeoutSeconds?: number
}

export interface UpdateWebhook {
  kind: 'validating' | 'mutating'
  /** The Validating/MutatingWebhookConfiguration's name. */
  configuration: string
  webhook: string
  /** Fail (the v1 default): a webhook that errors or times out fails the write. Ignore: the write goes on. */
  failurePolicy: string
  matchPolicy: string
  timeoutSeconds: number
  /** The rewritten resources its rules match for UPDATE. */
  resources: string[]
  /** `all`: it is called for every no-op write of those resources; `some`: filteredBy may leave some out. */
  seesNoOpWrite: 'all' | 'some'
  /** namespaceSelector, objectSelector, matchConditions: whichever is set and may exclude objects. */
  filteredBy: string[]
}

export interface WebhookCheck {
  webhooks: UpdateWebhook[]
  /** Set when the configurations could not be listed (e.g. RBAC): a warning, the rewrite still runs. */
  listError?: string
}

/**
 * Whether one rule matches an UPDATE of `resource` (the main resource: a rewrite writes no
 * subresource). `secrets/*` matches it too, as the apiserver's matcher compares the subresource
 * part with `*` before anything else. matchPolicy Equivalent (the v1 default) matches a rule for
 * another version of the same group and resource, which the apiserver converts to. (It also covers
 * other groups the apiserver knows as equivalent, e.g. old extensions/v1beta1 resources; the
 * versions the server serves are not looked up, so this errs on the side of a warning.)
 */
export function ruleMatchesUpdate(rule: WebhookRule, resource: ApiResource, matchPolicy = 'Equivalent'): boolean {
  const has = (list: string[] | undefined, value: string) => (list ?? []).some((v) => v === '*' || v === value)
  if (!has(rule.operations, 'UPDATE')) return false
  if (!has(rule.apiGroups, resource.group)) return false
  if (matchPolicy === 'Exact' && !has(rule.apiVersions, resource.version)) return false
  if (matchPolicy !== 'Exact' && (rule.apiVersions ?? []).length === 0) return false
  const resourceMatches = (rule.resources ?? []).some((text) => {
    const slash = text.indexOf('/')
    const [res, sub] = slash === -1 ? [text, ''] : [text.slice(0, slash), text.slice(slash + 1)]
    return (res === '*' || res === resource.resource) && (sub === '*' || sub === '')
  })
  if (!resourceMatches) return false
  const scope = rule.scope ?? '*'
  if (scope === 'Namespaced') return resource.namespaced
  if (scope === 'Cluster') return !resource.namespaced
  return true
}

export function webhookMatchesUpdate(webhook: AdmissionWebhook, resource: ApiResource): boolean {
  return (webhook.rules ?? []).some((rule) => ruleMatchesUpdate(rule, resource, webhook.matchPolicy ?? 'Equivalent'))
}

const selectorSet = (s: LabelSelector | undefined) =>
  Boolean(s && (Object.keys(s.matchLabels ?? {}).length > 0 || (s.matchExpressions ?? []).length > 0))

/** The webhooks of one configuration object that match UPDATE of any of `resources`. */
export function updateWebhooksOf(
  configuration: KubeObject,
  kind: UpdateWebhook['kind'],
  resources: ApiResource[],
): UpdateWebhook[] {
  const found: UpdateWebhook[] = []
  for (const webhook of (configuration.webhooks as AdmissionWebhook[] | undefined) ?? []) {
    const matched = resources.filter((r) => webhookMatchesUpdate(webhook, r)).map(resourceName)
    if (matched.length === 0) continue
    const filteredBy = [
      selectorSet(webhook.namespaceSelector) ? 'namespaceSelector' : undefined,
      selectorSet(webhook.objectSelector) ? 'objectSelector' : undefined,
      (webhook.matchConditions ?? []).length > 0 ? 'matchConditions' : undefined,
    ].filter((f): f is string => f !== undefined)
    found.push({
      kind,
      configuration: configuration.metadata.name,
      webhook: webhook.name,
      failurePolicy: webhook.failurePolicy ?? 'Fail',
      matchPolicy: webhook.matchPolicy ?? 'Equivalent',
      timeoutSeconds: webhook.timeoutSeconds ?? 10,
      resources: matched,
      seesNoOpWrite: filteredBy.length > 0 ? 'some' : 'all',
      filteredBy,
    })
  }
  return found
}

/** Lists both kinds of configuration (paged) and keeps the webhooks that match UPDATE of `resources`. */
export async function findUpdateWebhooks(client: ObjectClient, resources: ApiResource[]): Promise<WebhookCheck> {
  const webhooks: UpdateWebhook[] = []
  try {
    for (const [kind, resource] of [
      ['validating', VALIDATING_WEBHOOKS],
      ['mutating', MUTATING_WEBHOOKS],
    ] as const) {
      let continueToken: string | undefined
      do {
        const page = await client.list(resource, {limit: 500, continueToken})
        for (const configuration of page.items) webhooks.push(...updateWebhooksOf(configuration, kind, resources))
        continueToken = page.continueToken
      } while (continueToken)
    }
  } catch (error) {
    // Not being allowed to read them says nothing about the rewrite itself: warn, never stop.
    return {webhooks, listError: errorMessage(error)}
  }
  return {webhooks}
}

/** One stderr line per webhook (the caller adds `Warning: `). */
export function webhookWarning(w: UpdateWebhook): string {
  const sees =
    w.seesNoOpWrite === 'all'
      ? 'it sees every no-op write'
      : `its ${w.filteredBy.join(' and ')} may exclude some objects; it sees the no-op write of the rest`
  const policy =
    w.failurePolicy === 'Ignore'
      ? `failurePolicy Ignore: if it is down each write waits up to ${w.timeoutSeconds}s, then goes on`
      : `failurePolicy ${w.failurePolicy}: a denial, an error or a timeout (${w.timeoutSeconds}s) fails that object`
  const mutating = w.kind === 'mutating' ? '; a change it makes turns the no-op write into a real one' : ''
  return `${w.kind} admission webhook ${w.webhook} (${w.kind === 'validating' ? 'ValidatingWebhookConfiguration' : 'MutatingWebhookConfiguration'} ${w.configuration}) matches UPDATE of ${w.resources.join(', ')}: ${sees}; ${policy}${mutating}`
}

export function webhooksListWarning(listError: string): string {
  return `could not list admission webhook configurations (${listError}); a webhook matching UPDATE could still deny or slow the rewrite`
}
