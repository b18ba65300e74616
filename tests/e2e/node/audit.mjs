// Runs the GraphQL-over-HTTP conformance audit of graphql-http against a server.
//
//   node audit.mjs <http-url-of-the-graphql-endpoint>
//
// Prints one JSON document: {"url", "total", "counts": {"ok","notice","warn","error"},
// "failures": [{id, name, status, reason, response: {status, contentType, body}}]}.
// The exit code is 0 whatever the audit found (the test asserts on the summary); it is 1 only
// when the audit itself could not run (for example the server is unreachable), with
// {"error": ...} on stdout.

import { auditServer } from 'graphql-http';

const url = process.argv[2];

function print(value) {
  return new Promise((resolve) => process.stdout.write(JSON.stringify(value, null, 2) + '\n', resolve));
}

async function describeResponse(response) {
  if (!response) return null;
  let body = null;
  try {
    body = await response.clone().text();
  } catch {
    try {
      body = await response.text();
    } catch {
      body = '(body already read by the audit)';
    }
  }
  return {
    status: response.status,
    contentType: response.headers.get('content-type'),
    body: body !== null && body.length > 2000 ? `${body.slice(0, 2000)}...` : body,
  };
}

async function main() {
  if (!url) {
    await print({ error: 'usage: audit.mjs <http-url-of-the-graphql-endpoint>' });
    return 64;
  }
  let results;
  try {
    results = await auditServer({ url });
  } catch (error) {
    await print({ error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) });
    return 1;
  }
  const counts = { ok: 0, notice: 0, warn: 0, error: 0 };
  const failures = [];
  for (const result of results) {
    counts[result.status] = (counts[result.status] ?? 0) + 1;
    if (result.status !== 'ok') {
      failures.push({
        id: result.id,
        name: result.name,
        status: result.status,
        reason: result.reason,
        response: await describeResponse(result.response),
      });
    }
  }
  await print({ url, total: results.length, counts, failures });
  return 0;
}

process.exitCode = await main();
