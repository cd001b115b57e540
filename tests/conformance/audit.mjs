// Runs the graphql-http server audit (GraphQL-over-HTTP conformance) against a URL and prints
// one JSON line per audit: {"id", "name", "status", "reason"}. Exit status 0 when every
// audit is "ok"; tests/test_http_conformance.py runs this and treats anything else (MUST
// failures, SHOULD warnings and MAY notices alike) as a failure.
import { auditServer } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs http://host:port/graphql');
  process.exit(2);
}
const results = await auditServer({ url });
let failed = 0;
for (const result of results) {
  const line = { id: result.id, name: result.name, status: result.status };
  if (result.status !== 'ok') {
    failed += 1;
    line.reason = result.reason;
    line.httpStatus = result.response?.status;
  }
  console.log(JSON.stringify(line));
}
process.exit(failed ? 1 : 0);
