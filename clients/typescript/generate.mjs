// Writes schema.d.ts, the TypeScript types of the API, from its OpenAPI schema: a URL or a file,
// by default a local `make run`. Binary fields (an upload's `file`) become Blob rather than string.
//
//   node generate.mjs [http://127.0.0.1:8000/api/schema | schema.json]
import { writeFile } from "node:fs/promises";
import { pathToFileURL } from "node:url";
import openapiTS, { astToString } from "openapi-typescript";
import ts from "typescript";

const source = process.argv[2] ?? "http://127.0.0.1:8000/api/schema";
const schema = /^https?:\/\//.test(source) ? new URL(source) : pathToFileURL(source);
const BLOB = ts.factory.createTypeReferenceNode("Blob");

const ast = await openapiTS(schema, {
  transform(object) {
    return object.format === "binary" ? BLOB : undefined;
  },
});
await writeFile(new URL("./schema.d.ts", import.meta.url), astToString(ast));
