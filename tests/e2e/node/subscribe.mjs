// A graphql-transport-ws client (graphql-ws + ws) for the e2e tests.
//
//   node subscribe.mjs <ws-url> <query> [--variables JSON] [--connection-params JSON]
//                      [--count N] [--timeout MS]
//
// stdout carries JSON lines only:
//   {"ready":true}                     once the subscription is in place (see below)
//   {"data":...} / {"errors":...}      each `next` payload, as received
//   {"error":...}                      on failure (then the exit code is non-zero)
// It exits 0 after --count payloads (default 1), 1 on a protocol or GraphQL error, 2 when the
// server completes the subscription early and 3 on --timeout (default 20000 ms).
//
// When is it "ready"? graphql-transport-ws has no acknowledgement for Subscribe, so after the
// Subscribe message has left the socket this client runs a probe query (`{ __typename }`) over
// the same socket and prints {"ready":true} when the probe's result is back. The server reads
// one socket's messages in order, so by then it has accepted the Subscribe and started the
// operation. It does not prove the resolver has already joined the event fan-out (that happens
// inside the server's task), so a test that fires an event after "ready" should fire again if
// nothing arrives in a short while, rather than assume the first event cannot be missed.

import { parseArgs } from 'node:util';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

function out(value) {
  process.stdout.write(JSON.stringify(value) + '\n');
}

function fail(code, error, extra = {}) {
  out({ error: describe(error), ...extra });
  finish(code);
}

function describe(error) {
  if (error === undefined || error === null) return String(error);
  if (Array.isArray(error)) return error; // GraphQL errors
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  if (typeof error === 'object' && 'code' in error && 'reason' in error) {
    return { closeCode: error.code, reason: String(error.reason) }; // a CloseEvent
  }
  if (typeof error === 'object' && 'type' in error) return `WebSocket ${error.type}`;
  return error;
}

let client;
let finished = false;
function finish(code) {
  if (finished) return;
  finished = true;
  const exit = () => process.stdout.write('', () => process.exit(code));
  if (client) {
    Promise.resolve(client.dispose()).then(exit, exit);
    setTimeout(exit, 1000).unref();
  } else {
    exit();
  }
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    variables: { type: 'string' },
    'connection-params': { type: 'string' },
    count: { type: 'string', default: '1' },
    timeout: { type: 'string', default: '20000' },
  },
});
const [url, query] = positionals;
if (!url || !query) {
  fail(64, 'usage: subscribe.mjs <ws-url> <query> [--variables JSON] '
    + '[--connection-params JSON] [--count N] [--timeout MS]');
} else {
  run();
}

function run() {
  const count = Number.parseInt(values.count, 10);
  const timeout = Number.parseInt(values.timeout, 10);
  const variables = values.variables ? JSON.parse(values.variables) : undefined;
  const connectionParams = values['connection-params']
    ? JSON.parse(values['connection-params'])
    : undefined;

  let received = 0;
  let subscribeSent = false;
  setTimeout(() => fail(3, `timed out after ${timeout} ms`, { received }), timeout);

  // Note when our Subscribe message actually goes out, so the probe is sent after it.
  class TrackingWebSocket extends WebSocket {
    send(data, ...rest) {
      super.send(data, ...rest);
      if (subscribeSent) return;
      try {
        const message = JSON.parse(String(data));
        if (message.type === 'subscribe' && message.id === subscriptionId) {
          subscribeSent = true;
          probe();
        }
      } catch {
        // not JSON: not ours to inspect
      }
    }
  }

  let subscriptionId;
  client = createClient({
    url,
    webSocketImpl: TrackingWebSocket,
    connectionParams,
    lazy: true,
    retryAttempts: 0,
    generateID: () => {
      const id = `op-${Math.random().toString(36).slice(2)}`;
      if (subscriptionId === undefined) subscriptionId = id;
      return id;
    },
    on: {
      closed: (event) => {
        if (!finished) fail(1, event, { received });
      },
    },
  });

  client.subscribe(
    { query, variables },
    {
      next: (payload) => {
        out(payload);
        if (payload.errors) {
          fail(1, payload.errors, { received });
          return;
        }
        received += 1;
        if (received >= count) finish(0);
      },
      error: (error) => fail(1, error, { received }),
      complete: () => {
        if (!finished) fail(2, `the server completed the subscription after ${received} payloads`, { received });
      },
    },
  );

  function probe() {
    const result = [];
    client.subscribe(
      { query: 'query SubscribeProbe { __typename }' },
      {
        next: (payload) => result.push(payload),
        error: (error) => fail(1, error, { during: 'probe' }),
        complete: () => {
          if (result.some((r) => r.errors)) {
            fail(1, result.flatMap((r) => r.errors ?? []), { during: 'probe' });
          } else {
            out({ ready: true });
          }
        },
      },
    );
  }
}
