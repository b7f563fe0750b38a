import { fileURLToPath } from 'node:url'
import { createCelEvaluator } from '@verdict/cel-adapter'
import { describeCaseFile } from '@verdict/core/testing'

await describeCaseFile(fileURLToPath(new URL('./cases.yaml', import.meta.url)), {
  evaluators: [createCelEvaluator()],
})
