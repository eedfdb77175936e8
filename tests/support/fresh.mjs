// `call()` on a connection of its own (node:http, no keep-alive), for requests whose body the
// worker may answer without reading: locally, Miniflare's asset router then resets the kept-alive
// connection, and the next request on it fails with "other side closed" (a JS worker does the
// same; docs/reliability.md says more). Same options and answer shape as `call()`.
import http from "node:http";
import { ADMIN_TOKEN } from "./worker.mjs";

export function callFresh(base, method, route, { token = ADMIN_TOKEN, body, headers = {} } = {}) {
  const url = new URL(base + route);
  const sent = { ...headers };
  if (token) sent.authorization = `Bearer ${token}`;
  const payload = body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
  if (payload !== undefined) sent["content-type"] ??= "application/json";
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: url.hostname, port: url.port, path: url.pathname + url.search, method, headers: sent, agent: false },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d) => (text += d));
        res.on("end", () => {
          let json = null;
          try {
            json = JSON.parse(text);
          } catch {}
          const headers = new Headers();
          for (const [name, value] of Object.entries(res.headers)) {
            for (const v of [value].flat()) headers.append(name, v);
          }
          resolve({ status: res.statusCode, headers, json, text });
        });
      },
    );
    req.on("error", reject);
    req.end(payload);
  });
}
