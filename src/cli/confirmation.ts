import {preconditionError} from '../errors.js'
import type {Progress} from '../output/progress.js'
import {confirmByTyping, confirmYesNo, interactive} from '../output/prompt.js'

/**
 * The question a mutating command asks before its first change, as the flags want it: none with
 * --yes; else a y/N question, or the context name typed for the riskiest commands; refused without
 * a terminal (scripts pass --yes). The spinner pauses while the user answers.
 */
export function confirmation(options: {
  yes: boolean
  typeContext: boolean
  context: string
  refusal: string
  progress: Progress
}): ((question: string) => Promise<boolean>) | undefined {
  if (options.yes) return undefined
  return async (question) => {
    if (!interactive())
      throw preconditionError('CONFIRMATION_REQUIRED', options.refusal, {
        hint: 'Pass --yes (or look first with --dry-run).',
      })
    const resume = options.progress.pause()
    const yes = options.typeContext ? await confirmByTyping(question, options.context) : await confirmYesNo(question)
    // progress again only for a run that goes ahead; a refusal ends the command
    if (yes) resume()
    return yes
  }
}
