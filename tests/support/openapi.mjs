// Checks live responses against public/openapi.json (JSON Schema 2020-12, as OpenAPI 3.1 uses),
// so the document the worker serves stays true to what it does.
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { readFileSync } from "node:fs";
import path from "node:path";
import { ROOT } from "./worker.mjs";

const doc = JSON.parse(readFileSync(path.join(ROOT, "public/openapi.json"), "utf8"));
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addSchema({ $id: "openapi", components: doc.components });

const templates = Object.keys(doc.paths).map((template) => ({
  template,
  re: new RegExp("^" + template.replace(/\{[^}]+\}/g, "[^/]+") + "$"),
}));

/** Throws unless `status`/`json` is a documented response of `method route`. */
export function assertDocumented(method, route, status, json) {
  const pathOnly = route.split("?")[0];
  const match = templates.find((t) => t.re.test(pathOnly));
  if (!match) throw new Error(`${method} ${pathOnly}: path not in openapi.json`);
  const op = doc.paths[match.template][method.toLowerCase()];
  if (!op) throw new Error(`${method} ${match.template}: method not in openapi.json`);
  const response = op.responses[String(status)];
  if (!response) throw new Error(`${method} ${match.template}: status ${status} not documented`);
  const schema = response.content?.["application/json"]?.schema;
  if (!schema) return;
  const rewritten = JSON.parse(
    JSON.stringify(schema).replaceAll('"#/components', '"openapi#/components'),
  );
  const validate = ajv.compile(rewritten);
  if (!validate(json)) {
    throw new Error(
      `${method} ${route} ${status}: body breaks openapi.json: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(json)}`,
    );
  }
}

/** Whether `body` is a valid JSON request body of `method template` by openapi.json. */
export function documentedRequest(method, template, body) {
  const op = doc.paths[template]?.[method.toLowerCase()];
  const schema = op?.requestBody?.content?.["application/json"]?.schema;
  if (!schema) throw new Error(`${method} ${template}: no JSON request body in openapi.json`);
  const rewritten = JSON.parse(JSON.stringify(schema).replaceAll('"#/components', '"openapi#/components'));
  return ajv.compile(rewritten)(body);
}
