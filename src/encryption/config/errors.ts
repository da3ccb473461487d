/**
 * Configuration errors, rendered exactly as the apiserver prints them (docs/kubernetes-behaviour.md §6.1, §5.2).
 * Key material never enters a ConfigError: per-key errors carry "REDACTED" and provider echoes are
 * redacted before rendering (docs/kubernetes-behaviour.md §14.6).
 */
import {goJson, goQuote} from '../gocompat/format.js'

/** What is printed in place of key material (the apiserver's own word for it, docs/kubernetes-behaviour.md §6.1). */
export const REDACTED = 'REDACTED'

/**
 * Where in the apiserver's pipeline an error arises: `Required`/`Invalid` are field errors of the
 * validator (§6); `Read`, `Decode` and `Build` are the loader's stages (§5.2, §6.6); `Unsupported`
 * is this plugin's version gate for the chosen --target-version (§15), which the apiserver of that
 * release would refuse in its own words.
 */
export type ConfigErrorType = 'Required' | 'Invalid' | 'Read' | 'Decode' | 'Build' | 'Unsupported'

export interface ConfigError {
  /** Field path rooted at `resources` (e.g. `resources[0].providers[1].kms.name`); empty for whole-file errors. */
  field: string
  type: ConfigErrorType
  /** The detail text, e.g. `secrets must be base64 encoded`. */
  detail: string
  /** The error as the apiserver renders it, e.g. `resources[0].providers[0].kms.name: Required value: …`. */
  message: string
}

/** A value as field.Error renders it: strings Go-quoted, integers bare, anything else JSON (docs/kubernetes-behaviour.md §6.1). */
export function renderValue(value: unknown): string {
  if (typeof value === 'string') return goQuote(value)
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value)
  return goJson(value)
}

export function requiredError(field: string, detail: string): ConfigError {
  return {field, type: 'Required', detail, message: `${field}: Required value: ${detail}`}
}

export function invalidError(field: string, value: unknown, detail: string): ConfigError {
  return {field, type: 'Invalid', detail, message: `${field}: Invalid value: ${renderValue(value)}: ${detail}`}
}

export function stageError(type: 'Read' | 'Decode' | 'Build', detail: string): ConfigError {
  return {field: '', type, detail, message: detail}
}

/** A feature the target release lacks (docs/kubernetes-behaviour.md §15); the message names the field first, as field errors do. */
export function unsupportedError(field: string, detail: string): ConfigError {
  return {field, type: 'Unsupported', detail, message: field === '' ? detail : `${field}: ${detail}`}
}

/**
 * apimachinery's aggregate: de-duplicated by message, one shown as itself, several as `[e1, e2]`
 * (docs/kubernetes-behaviour.md §6.1). No errors make no message: '' (the apiserver has no aggregate then).
 */
export function aggregateMessage(errors: readonly ConfigError[]): string {
  const messages = [...new Set(errors.map((e) => e.message))]
  if (messages.length === 0) return ''
  return messages.length === 1 ? (messages[0] ?? '') : `[${messages.join(', ')}]`
}

/** De-duplicates by message, keeping the first of each (the apiserver's aggregate does the same). */
export function dedupeErrors(errors: readonly ConfigError[]): ConfigError[] {
  const seen = new Set<string>()
  return errors.filter((e) => (seen.has(e.message) ? false : (seen.add(e.message), true)))
}

/**
 * The whole message the apiserver logs for a bad file (docs/kubernetes-behaviour.md §5.2): read errors under
 * `error while loading file:`, which loadConfig returns and LoadEncryptionConfig wraps again, like decode
 * and validation errors, under `error while parsing file:`,
 * build errors (§6.6) under `error while building transformers:`. This plugin's release gates
 * (`Unsupported`, docs/kubernetes-behaviour.md §15) follow the build error, joined by "; ". '' when there is no error.
 */
export function apiserverMessage(errors: readonly ConfigError[]): string {
  const of = (...types: ConfigErrorType[]) => errors.filter((e) => types.includes(e.type))
  const read = of('Read')[0]
  if (read) return `error while parsing file: error while loading file: ${read.message}`
  const parse = of('Decode', 'Required', 'Invalid')
  if (parse.length > 0) return `error while parsing file: ${aggregateMessage(parse)}`
  const build = of('Build')[0]
  const gates = aggregateMessage(of('Unsupported'))
  return [build ? `error while building transformers: ${build.message}` : '', gates].filter((m) => m !== '').join('; ')
}
