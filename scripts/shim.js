// The worker's JavaScript entry, bundled by worker-build (CUSTOM_SHIM, see scripts/build.sh)
// around wasm-bindgen's glue. worker-build's own entry is a WorkerEntrypoint class behind three
// Proxies, made anew for every request: about 35 µs of CPU per request here (bench/RESULTS.md),
// a fifth of what a malformed-key rejection may cost. This one is a plain module export.
// worker-build fills in the $SNIPPET_… lines: wasm-bindgen's inline JS modules (the worker crate's
// init state), which the Wasm module imports beside the glue.
import * as glue from "./index_bg.js";
import wasmModule from "./index.wasm";
$SNIPPET_JS_IMPORTS

export { KeyChanges } from "./index_bg.js";

const imports = {
  "./index_bg.js": glue,
  $SNIPPET_WASM_IMPORTS
};
const instance = new WebAssembly.Instance(wasmModule, imports);
glue.__wbg_set_wasm(instance.exports);
instance.exports.__wbindgen_start();

// Recovery after a Rust panic (a trap leaves the module's memory in an unknown state):
// the worker crate's panic hook sets `criticalError`; the next request then asks the glue to
// start a fresh instance before it calls in. The glue's reset names these free variables,
// which only wasm-bindgen's module target declares (wasm-bindgen is pinned in Cargo.lock).
globalThis.wasmModule = wasmModule;
globalThis.wasmInstance = instance;
globalThis.__wbg_get_imports = () => imports;
const scheduleReinit = Object.entries(glue).find(([name]) =>
  name.startsWith("__wbg___wbindgen_reinit_"),
)?.[1];
const state = globalThis.__worker_init_state;

function recoverIfCritical() {
  if (state?.criticalError && scheduleReinit) {
    console.error("Critical: a previous request trapped; starting a fresh Wasm instance");
    state.criticalError = false;
    scheduleReinit();
  }
}

addEventListener("error", (event) => {
  if (event.error instanceof WebAssembly.RuntimeError && state) state.criticalError = true;
});

export default {
  fetch(request, env, ctx) {
    recoverIfCritical();
    try {
      return glue.fetch(request, env, ctx);
    } catch (e) {
      if (e instanceof WebAssembly.RuntimeError && state) state.criticalError = true;
      throw e;
    }
  },
};
