import { fileURLToPath } from 'node:url'
import { createCelEvaluator } from '@verdict/cel-adapter'
import { describeCaseFile } from '@verdict/core/testing'
import { createMcpEvaluator } from '@verdict/mcp'

const evaluators = [createMcpEvaluator(), createCelEvaluator()]
for (const file of ['local.cases.yaml', 'remote.cases.yaml', 'remote-cel.cases.yaml']) {
  await describeCaseFile(fileURLToPath(new URL(`./${file}`, import.meta.url)), { evaluators })
}
