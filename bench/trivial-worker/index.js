// bench/trivial-worker: answers 200 "ok" to everything — the local throughput ceiling of
// workerd + Miniflare + the load generator on this machine.
export default {
  fetch() {
    return new Response("ok");
  },
};
