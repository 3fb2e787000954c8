// Check XRPC calls against the lexicons shipped in the installed @atproto/api package, with the
// reference validator (@atproto/lexicon), for contract tests of services that cannot run here.
// Reads one JSON object per line on stdin:
//   {"nsid": "...", "method": "GET"|"POST", "params": [[name, value], ...],
//    "input": object|null, "output": object|null}
// (params as they came in the query string) and answers one line per call: {"errors": [...]}.
import { createInterface } from 'node:readline'
import { lexicons } from '@atproto/api'

// Query-string values are text: type them as the method's parameter definitions say, as an
// XRPC server does before validating.
function decodeParams(def, pairs, errors) {
  const properties = def.parameters?.properties ?? {}
  const decoded = {}
  for (const [name, text] of pairs) {
    const property = properties[name]
    if (!property) {
      errors.push(`unknown parameter ${name}`)
      continue
    }
    const itemType = property.type === 'array' ? property.items.type : property.type
    let value = text
    if (itemType === 'integer') value = Number(text)
    if (itemType === 'boolean') value = text === 'true' ? true : text === 'false' ? false : text
    if (property.type === 'array') (decoded[name] ??= []).push(value)
    else if (name in decoded) errors.push(`parameter ${name} given twice`)
    else decoded[name] = value
  }
  return decoded
}

function check(call) {
  const errors = []
  let def
  try {
    def = lexicons.getDefOrThrow(call.nsid, ['query', 'procedure'])
  } catch (error) {
    return [`${call.nsid} is not a query or procedure of @atproto/api: ${error.message}`]
  }
  const method = def.type === 'query' ? 'GET' : 'POST'
  if (call.method !== method) errors.push(`${call.nsid} is a ${def.type}: use ${method}`)
  const attempts = [
    () => lexicons.assertValidXrpcParams(call.nsid, decodeParams(def, call.params ?? [], errors)),
  ]
  if (def.type === 'procedure' && def.input?.schema) {
    attempts.push(() => lexicons.assertValidXrpcInput(call.nsid, call.input))
  }
  if (call.output != null) {
    attempts.push(() => lexicons.assertValidXrpcOutput(call.nsid, call.output))
  }
  for (const attempt of attempts) {
    try {
      attempt()
    } catch (error) {
      errors.push(error.message)
    }
  }
  return errors
}

for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue
  let errors
  try {
    errors = check(JSON.parse(line))
  } catch (error) {
    errors = [`unreadable call: ${error.message}`]
  }
  process.stdout.write(JSON.stringify({ errors }) + '\n')
}
