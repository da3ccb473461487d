/**
 * The whole verdict on a decoded EncryptionConfiguration (docs/kubernetes-behaviour.md §7): field validation (§6), then, only
 * if that passed, the transformer-build checks (§6.6) and the target release's gates (§15); warnings
 * for a valid file (§7 step 6).
 */
import type {EncryptionConfiguration} from './model.js'
import type {ConfigError} from './errors.js'
import {buildErrors, releaseGateErrors, type ValidateOptions, validationErrors} from './field-validation.js'
import {configWarnings} from './warnings.js'

export type {ValidateOptions} from './field-validation.js'

export interface ValidationResult {
  errors: ConfigError[]
  warnings: string[]
}

export function validateEncryptionConfig(
  config: EncryptionConfiguration,
  options: ValidateOptions = {},
): ValidationResult {
  const fieldErrors = validationErrors(config, options)
  if (fieldErrors.length > 0) return {errors: fieldErrors, warnings: []}
  const errors = [...buildErrors(config, options), ...releaseGateErrors(config, options)]
  const warnings = configWarnings(config, {targetVersion: options.targetVersion})
  return {errors, warnings}
}
