// The worker's JavaScript entry, bundled by worker-build (CUSTOM_SHIM, see scripts/build.sh)
// around wasm-bindgen's glue. worker-build's own entry is a WorkerEntrypoint class behind three
// Proxies, made anew for every request: about 35 µs of CPU per request here (bench/profile.mjs),
// a fifth of what a malformed-key rejection may cost. This one is a plain module export.
// worker-build fills in the $SNIPPET_… lines: wasm-bindgen's inline JS modules (the worker crate's
// init state), which the Wasm module imports beside the glue.
import * as glue from "./index_bg.js";
import wasmModule from "./index.wasm";
$SNIPPET_JS_IMPORTS

const imports = {
  "./index_bg.js": glue,
  $SNIPPET_WASM_IMPORTS
};
const instance = new WebAssembly.Instance(wasmModule, imports);
glue.__wbg_set_wasm(instance.exports);
instance.exports.__wbindgen_start();

// Recovery after a trap (a Rust panic, or running out of memory), which leaves the module's
// memory in an unknown state. The worker crate's panic hook sets `criticalError`, and so do the
// listeners below for other traps; the next call then has the glue start a fresh instance. The
// glue's reset names these free variables, which only wasm-bindgen's module target declares
// (wasm-bindgen is pinned in Cargo.lock; scripts/build.sh checks the glue still uses them).
globalThis.wasmModule = wasmModule;
globalThis.wasmInstance = instance;
globalThis.__wbg_get_imports = () => imports;
const scheduleReinit = Object.entries(glue).find(([name]) =>
  name.startsWith("__wbg___wbindgen_reinit_"),
)?.[1];
const state = globalThis.__worker_init_state;

function recoverIfCritical() {
  if (!state?.criticalError) return;
  console.error("Critical: an earlier call trapped; starting a fresh Wasm instance");
  scheduleReinit();
  glue.__worker_init_state(); // runs the reset now, before an object of the old instance is used
  state.criticalError = false; // only once the fresh instance is up
}

function flagTrap(error) {
  if (error instanceof WebAssembly.RuntimeError && state) state.criticalError = true;
}

addEventListener("error", (event) => flagTrap(event.error));
// A trap while a request resumes after a promise surfaces as an unhandled rejection.
addEventListener("unhandledrejection", (event) => flagTrap(event.reason));

// `call(a, b)`, not a closure: the worker's `fetch` passes its function and arguments as they
// are, with no closure made per request.
function guarded(call, a, b) {
  recoverIfCritical();
  try {
    return call(a, b);
  } catch (e) {
    flagTrap(e);
    throw e;
  }
}

export default {
  fetch(request, env) {
    return guarded(glue.fetch, request, env);
  },
};

// The `KeyChanges` Durable Object, remade on the fresh instance after a recovery (an object of
// the old one would refuse every call); it reloads its log from storage.
export class KeyChanges {
  constructor(durableState, env) {
    this.args = [durableState, env];
  }

  current() {
    if (this.instanceId !== state?.instanceId) {
      this.object = new glue.KeyChanges(...this.args);
      this.instanceId = state?.instanceId;
    }
    return this.object;
  }

  fetch(request) {
    return guarded(() => this.current().fetch(request));
  }

  alarm() {
    return guarded(() => this.current().alarm());
  }
}
