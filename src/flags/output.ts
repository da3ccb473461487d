import {Flags} from '@oclif/core'

import {OUTPUT_FORMATS, type OutputFormat} from '../output/render.js'

export const outputFlags = {
  output: Flags.option({
    char: 'o',
    description: 'Output format.',
    options: OUTPUT_FORMATS,
    default: 'table' as OutputFormat,
    helpGroup: 'GLOBAL',
  })(),
  verbose: Flags.boolean({
    description: 'Print progress and raw error details (never key material) on stderr.',
    default: false,
    helpGroup: 'GLOBAL',
  }),
}
